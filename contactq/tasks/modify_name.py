"""modifyName: set a contact's remark; the stored record gets Remark, RemarkName and their pinyin, announced on
topic.modcontact."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from contactq.errors import NotFound
from contactq.tasks.messages import Request
from contactq.tasks.operation import Call, operation


class ModifyName(Request):
    userName: str = Field(min_length=1)
    newRemarkName: str
    wechatUser: str | None = None


@operation("modifyName", ModifyName)
def modify_name(call: Call, req: ModifyName) -> dict[str, Any]:
    call.client.set_remark(req.uin, req.userName, req.newRemarkName)
    records = call.refresh([req.userName])
    if not records:
        raise NotFound(f"{req.userName} is not a contact of {call.session.wxid}")
    call.announce("modcontact", [req.userName])
    return {"contact": records[0]}
