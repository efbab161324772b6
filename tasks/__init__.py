"""The Celery side of contactq: the app, one task per operation, and how Python callers reach them.

from tasks import submit
result = submit("searchContact", {"adminUserId": 18, "uin": "1150109773", "userName": "nicole_nico",
                                  "queueName": "queue.reply.search"}, server_id=1, child_id=1)
reply = result.get(timeout=10)
"""

from tasks.app import app, runtime
from tasks.calling import queue_for, submit

__all__ = ["app", "queue_for", "runtime", "submit"]
