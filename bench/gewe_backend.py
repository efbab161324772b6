"""The Gewechat backend against the simulated WeChat served over HTTP, beside the same simulation in process.

Ours: `GeweWeChat` calling `contactq sim serve` (real HTTP, a pooled keep-alive client) for searches, contact details
of 100 at a time, a chatroom's members and the whole contact list. Baseline: the same calls on `SimulatedWeChat` in
this process, on the same Redis: the ratio is what the HTTP hop and the Gewechat shapes cost.

    python bench/gewe_backend.py [--calls 500] [--runs 3]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contactq.settings import Settings  # noqa: E402
from protocol.client import WeChatClient  # noqa: E402
from protocol.fixture import DEFAULT_FIXTURE, load_fixture  # noqa: E402
from protocol.gewe import GeweWeChat, http_client  # noqa: E402
from protocol.gewe_server import ServedSimulation, create_app  # noqa: E402
from protocol.simulated import SimulatedWeChat  # noqa: E402
from tests.servers import Served  # noqa: E402

UIN = "1150109773"
PREFIX = "bench-gewe:"
TOKEN = "bench"


def rate(calls: int, do: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        do()
    return calls / (time.perf_counter() - start)


def workloads(client: WeChatClient, names: list[str]) -> dict[str, Callable[[], object]]:
    return {
        "search": lambda: client.search(UIN, "ops_two"),
        "contact_details (all)": lambda: client.contact_details(UIN, names),
        "chatroom_members": lambda: client.chatroom_members(UIN, "18839427610@chatroom"),
        "contact_list": lambda: client.contact_list(UIN, 0),
    }


@click.command()
@click.option("--calls", default=500, show_default=True)
@click.option("--runs", default=3, show_default=True)
def main(calls: int, runs: int) -> None:
    r = redis.Redis.from_url("redis://127.0.0.1:6379/9", decode_responses=True)
    sim = SimulatedWeChat(r, 1, [1, 2], prefix=PREFIX)
    sim.load(load_fixture(DEFAULT_FIXTURE))
    served = ServedSimulation(r, PREFIX, page_size=500, timeout_s=10)
    try:
        with Served(create_app(served, TOKEN)) as api:
            settings = Settings(
                gewe_base_url=f"{api.url}/v2/api", gewe_token=TOKEN, gewe_accounts=sim.accounts(), child_ids=[1, 2]
            )
            gewe = GeweWeChat(http_client(settings), r, settings.gewe_accounts, 1, [1, 2])
            names = sim.contact_list(UIN, 0).usernames
            ours, raw = workloads(gewe, names), workloads(sim, names)
            print(f"{calls} calls per figure, {runs} runs; median (min-max) calls/s")
            print("| call | gewe over HTTP | in process | ratio |\n|---|---|---|---|")
            for name in ours:
                over_http = [rate(calls, ours[name]) for _ in range(runs)]
                in_process = [rate(calls, raw[name]) for _ in range(runs)]
                ratio = statistics.median(over_http) / statistics.median(in_process)
                print(
                    f"| {name} | {statistics.median(over_http):.0f} ({min(over_http):.0f}-{max(over_http):.0f}) "
                    f"| {statistics.median(in_process):.0f} ({min(in_process):.0f}-{max(in_process):.0f}) "
                    f"| {ratio:.2f} |"
                )
            gewe.http.close()
    except httpx.HTTPError as e:
        raise SystemExit(f"the served simulation failed: {e}") from e
    finally:
        sim.reset()
        r.close()


if __name__ == "__main__":
    main()
