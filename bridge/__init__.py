"""The ActiveMQ bridge: Java producers' requests into Celery, replies and events back out, nothing lost."""
