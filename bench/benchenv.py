"""The benchmarks' own Redis databases, so that a benchmark never touches a running demo or a test run."""

BENCH_ENV = {
    "CONTACTQ_BROKER_URL": "redis://127.0.0.1:6379/3",
    "CONTACTQ_RESULT_BACKEND": "redis://127.0.0.1:6379/4",
    "CONTACTQ_STORE_URL": "redis://127.0.0.1:6379/5",
    "CONTACTQ_SIM_URL": "redis://127.0.0.1:6379/5",
    "CONTACTQ_CHILD_IDS": "1",
}

# The bare Celery app the bridge is measured against: the same Redis server, databases of its own, so that neither
# app's workers receive the other's broadcasts (pings, a starting worker's hello) in a serializer they refuse.
BARE_BROKER_URL = "redis://127.0.0.1:6379/10"
BARE_RESULT_BACKEND = "redis://127.0.0.1:6379/11"
