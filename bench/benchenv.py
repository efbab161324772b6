"""The benchmarks' own Redis databases, so that a benchmark never touches a running demo or a test run."""

BENCH_ENV = {
    "CONTACTQ_BROKER_URL": "redis://127.0.0.1:6379/3",
    "CONTACTQ_RESULT_BACKEND": "redis://127.0.0.1:6379/4",
    "CONTACTQ_STORE_URL": "redis://127.0.0.1:6379/5",
    "CONTACTQ_SIM_URL": "redis://127.0.0.1:6379/5",
    "CONTACTQ_CHILD_IDS": "1",
}
