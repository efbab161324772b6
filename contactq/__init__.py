"""contactq: the WeChat contact module on Celery."""
