"""What the bot says, in English and Simplified Chinese (chosen by the user's language_code)."""

from __future__ import annotations

_TEXTS: dict[str, dict[str, str]] = {
    "start": {
        "en": (
            "Redress helps people whose intimate images are shared without their consent.\n\n"
            "To protect your images, open {portal} on your own phone or computer. Your "
            "pictures are turned into fingerprints (hashes) on your device; the pictures "
            "themselves are never uploaded. When a matching image is posted in a group this "
            "bot guards, it is removed and evidence is kept for you.\n\n"
            "You will get a case number and a PIN to follow or withdraw your case at any time.\n"
            "To report a message in a group, reply to it with /report."
        ),
        "zh": (
            "Redress 帮助私密照片在未经同意的情况下被传播的人。\n\n"
            "要保护你的照片，请在你自己的手机或电脑上打开 {portal}。"
            "照片只会在你的设备上生成指纹（哈希值），照片本身绝不会被上传。"
            "当有相符的图片被发到本机器人守护的群组时，它会被删除，证据会为你保存。\n\n"
            "你会得到一个案件编号和 PIN 码，可以随时查看或撤回你的案件。\n"
            "要在群组中举报一条消息，请回复该消息并发送 /report。"
        ),
    },
    "ack": {
        "en": (
            "Thank you. Your report about message {message} in {chat} was received "
            "(reference {ref}). Moderators will review it."
        ),
        "zh": "谢谢。你对 {chat} 中消息 {message} 的举报已收到（编号 {ref}）。审核人员会处理。",
    },
    "notice": {
        "en": (
            "A message was removed: it matched an image reported as shared without consent. "
            "Sharing intimate images without consent is abuse."
        ),
        "zh": (
            "一条消息已被删除：它与被举报为未经同意传播的私密图片相符。"
            "未经同意传播私密图片是一种侵害。"
        ),
    },
}


def language_of(code: str | None) -> str:
    """``"zh"`` for any Chinese language_code (zh, zh-hans, zh-CN, ...), else ``"en"``."""
    return "zh" if code and code.lower().startswith("zh") else "en"


def text(name: str, language: str | None, **values: str) -> str:
    """The named text in ``language`` (English when unknown), with ``values`` filled in."""
    variants = _TEXTS[name]
    return variants.get(language_of(language), variants["en"]).format(**values)
