"""modifyName: set a contact's remark; the stored record gets Remark, RemarkName and their pinyin, announced on
topic.modcontact and its alias topic.modifycontact."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from contactq.errors import NotFound
from tasks.messages import Request, Result
from tasks.operation import Call, operation


class ModifyName(Request):
    userName: str = Field(min_length=1)
    newRemarkName: str
    wechatUser: str | None = None


class Modified(Result):
    contact: dict[str, Any] = Field(default_factory=dict)  # the stored record


@operation("modifyName", ModifyName, Modified)
def modify_name(call: Call, req: ModifyName) -> Modified:
    """Set the remark of contact `userName` to `newRemarkName`; the stored record is updated and announced on
    topic.modcontact and topic.modifycontact."""
    call.client.set_remark(req.uin, req.userName, req.newRemarkName)
    records = call.refresh([req.userName])
    if not records:
        raise NotFound(f"{req.userName} is not a contact of {call.session.wxid}")
    call.announce_modified([req.userName])
    return Modified(contact=records[0])
