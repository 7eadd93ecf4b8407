"""Small pieces shared by the portal's forms."""

import re

from wtforms import IntegerField
from wtforms.validators import StopValidation
from wtforms.widgets import TextInput


def strip(value):
    """A form filter: pasted values often carry stray spaces."""
    return value.strip() if isinstance(value, str) else value


class WholeNumberField(IntegerField):
    """A whole number as people type it ("1500", "1,500", "1 500"), in ASCII digits (int() would
    also take "1_500" and other scripts' digits); `unreadable` says what to type instead. A text
    box (inputmode numeric): a number box refuses "1,500" before we could read it."""

    widget = TextInput()
    unreadable = "Enter a whole number, digits only (for example 150)."

    def __init__(self, label=None, validators=None, unreadable: str | None = None, **kwargs):
        super().__init__(label, validators, **kwargs)
        if unreadable:
            self.unreadable = unreadable

    def process_formdata(self, valuelist):
        self.data = None
        if not valuelist or not valuelist[0].strip():
            return  # InputRequired says what is missing
        text = re.sub(r"[\s,]", "", valuelist[0])
        if not re.fullmatch(r"[0-9]{1,12}", text):
            raise ValueError(self.unreadable)
        self.data = int(text)

    def pre_validate(self, form):
        if self.process_errors:
            raise StopValidation()  # one message for an unreadable number, not also "out of range"
