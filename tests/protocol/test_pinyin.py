import pytest

from protocol.pinyin import initials, quan_pin


@pytest.mark.parametrize(
    ("text", "full", "short"),
    [
        ("淑萍", "shuping", "SP"),  # the seed's remark
        ("Nicole_nico'ni", "Nicoleniconi", "NICOLENICONI"),  # the seed's nickname: Latin kept, the rest dropped
        ("张三abc", "zhangsanabc", "ZSABC"),
        ("小明123", "xiaoming123", "XM123"),
        ("😀阿狸", "ali", "AL"),
        ("小龙女🐉", "xiaolongnv", "XLN"),
        ("重庆银行", "chongqingyinhang", "CQYH"),  # polyphonic 重 and 行, decided by the phrase
        ("长大了", "zhangdale", "ZDL"),
        ("银行家Bob", "yinhangjiaBob", "YHJBOB"),
        ("Alice Wang", "AliceWang", "ALICEWANG"),
        ("ＡＢＣ１２", "ABC12", "ABC12"),  # full-width forms fold to ASCII
        ("合法人類。", "hefarenlei", "HFRL"),  # traditional characters, as in the seed's friend request
        ("", "", ""),
        ("🥾!!", "", ""),
    ],
)
def test_pinyin_follows_wechat(text: str, full: str, short: str) -> None:
    assert quan_pin(text) == full
    assert initials(text) == short
