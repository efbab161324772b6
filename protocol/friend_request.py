"""The friend-request `<msg .../>` XML WeChat delivers to the account that receives a request.

Parsed with lxml and never trusted: a document with a DTD or an entity, or larger than a bound, is refused before
anything is expanded or fetched.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from pydantic import BaseModel, ConfigDict, ValidationError

from contactq.errors import InvalidRequest, UnsafeXml

MAX_XML_BYTES = 64 * 1024
_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY")


class FriendRequest(BaseModel):
    """The attributes of `<msg>`; the ones the contact module uses are typed, the rest are kept as they came."""

    model_config = ConfigDict(extra="allow")

    # In the order WeChat writes them.
    fromusername: str
    encryptusername: str  # v1
    fromnickname: str = ""
    content: str = ""
    fullpy: str = ""
    shortpy: str = ""
    scene: int
    country: str = ""
    province: str = ""
    city: str = ""
    sign: str = ""
    sex: int = 0
    alias: str = ""
    bigheadimgurl: str = ""
    smallheadimgurl: str = ""
    ticket: str  # v2
    opcode: int = 2
    chatroomusername: str = ""
    sourceusername: str = ""
    sourcenickname: str = ""

    def add_new_fields(self) -> dict[str, Any]:
        """The fields of an addNew request that accepts this friend request."""
        return {
            "userName": self.encryptusername,
            "verifyUserTicket": self.ticket,
            "type": self.scene,
            "opcode": 3,
            "verifyContent": "",
        }


def _parser() -> etree.XMLParser:
    # A parser per call: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )


def parse_friend_request(xml: str | bytes, max_bytes: int = MAX_XML_BYTES) -> FriendRequest:
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    if len(data) > max_bytes:
        raise UnsafeXml(f"friend-request XML is {len(data)} bytes, more than the {max_bytes} allowed")
    upper = data.upper()
    for marker in _FORBIDDEN:
        if marker in upper:
            raise UnsafeXml(f"friend-request XML must not contain {marker.decode()} declarations")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as e:
        raise InvalidRequest(f"friend-request XML is not well-formed: {e}") from e
    if root.getroottree().docinfo.internalDTD is not None:
        raise UnsafeXml("friend-request XML must not carry a DTD")
    if root.tag != "msg":
        raise InvalidRequest(f"friend-request XML must be a <msg> element, not <{root.tag}>")
    try:
        return FriendRequest.model_validate(dict(root.attrib))
    except ValidationError as e:
        raise InvalidRequest(f"friend-request XML lacks what an addNew needs: {e}") from e


def friend_request_xml(request: FriendRequest, brandlist_ver: str = "0") -> str:
    """The XML as WeChat delivers it, for the simulated WeChat to hand to the receiving account."""
    attrib = {key: str(value) for key, value in request.model_dump().items()}
    msg = etree.Element("msg", attrib)
    etree.SubElement(msg, "brandlist", {"count": "0", "ver": brandlist_ver})
    return etree.tostring(msg, encoding="unicode")
