"""The virtual phone (sandbox web layer): a handset page for one number that shows its STK prompts,
lets the person there pay or cancel them, and lists the SMS sent to it."""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import timedelta

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for

from portal.extensions import db
from portal.models import SandboxSms, SandboxStkRequest
from portal.sandbox.africastalking import messaging
from portal.sandbox.daraja import stk
from portal.sandbox.daraja.schemas import MSISDN
from portal.timeutil import as_nairobi, utcnow
from portal.web.htmx import is_htmx

bp = Blueprint("sandbox_phone", __name__, url_prefix="/sandbox/phone")

RESULT_SHOWN_FOR = timedelta(minutes=5)  # after that the phone is back on its home screen
INBOX_SIZE = 50
PIN = re.compile(r"[0-9]{4}")  # the simulator cannot know a real PIN: any four digits will do
LOCAL = re.compile(r"(?:\+254|0)([0-9]{9})")


@dataclass
class Screen:
    """What the phone shows; `version` changes exactly when the rendered screen would."""

    msisdn: str
    prompt: SandboxStkRequest | None  # open, so it can be answered (or watched, if not interactive)
    result: SandboxStkRequest | None  # closed lately, shown until the next prompt
    messages: list[SandboxSms]
    clock: str
    version: str = field(init=False)

    def __post_init__(self):
        state = (
            self.prompt and (self.prompt.id, self.prompt.interactive),
            self.result and (self.result.id, self.result.result_code),
            [m.id for m in self.messages],
            self.clock,
        )
        self.version = hashlib.sha1(repr(state).encode()).hexdigest()[:12]


@bp.context_processor
def helpers() -> dict:
    return {"eat": as_nairobi}


def read_screen(msisdn: str) -> Screen:
    prompts = SandboxStkRequest.query.filter_by(phone=msisdn).order_by(SandboxStkRequest.id.desc())
    latest = prompts.first()
    prompt = latest if latest is not None and latest.is_open else None
    result = (
        latest
        if latest is not None and not latest.is_open and latest.resolved_at > utcnow() - RESULT_SHOWN_FOR
        else None
    )
    messages = messaging.kept(msisdn, INBOX_SIZE, delivered_only=True)
    return Screen(msisdn, prompt, result, messages, as_nairobi(utcnow()).strftime("%H:%M"))


def checked(msisdn: str) -> str:
    if not re.fullmatch(MSISDN, msisdn):
        abort(404)
    return msisdn


def render(msisdn: str, status: int = 200, **extra):
    """The screen partial for htmx, the whole page otherwise; the same markup either way."""
    template = "sandbox/_screen.html" if is_htmx() else "sandbox/phone.html"
    response = make_response(render_template(template, screen=read_screen(msisdn), **extra), status)
    response.vary.add("HX-Request")
    return response


def own_prompt_or_404(msisdn: str, prompt_id: int) -> SandboxStkRequest:
    """A prompt is answered only from the phone it was sent to."""
    req = db.session.get(SandboxStkRequest, prompt_id)
    if req is None or req.phone != msisdn:
        abort(404)
    return req


def answer_prompt(msisdn: str, req: SandboxStkRequest, pay: bool):
    if not req.is_open or not req.interactive:
        notice = (
            "This request is closed: it was already answered or timed out. Nothing was changed."
            if not req.is_open
            else "The sandbox answers this request itself; nothing was changed."
        )
        return render(msisdn, 422, notice=notice)
    if not stk.answer(req, pay):
        return render(msisdn, 422, notice="This request closed before your answer arrived. Nothing was changed.")
    if not is_htmx():
        return redirect(url_for("sandbox_phone.phone", msisdn=msisdn), 303)
    return render(msisdn)


@bp.get("/<msisdn>")
def phone(msisdn: str):
    local = LOCAL.fullmatch(msisdn)
    if local:  # 07.. and +254.. are the same phone: one address for it
        return redirect(url_for("sandbox_phone.phone", msisdn="254" + local.group(1)), 301)
    stk.mark_attended(checked(msisdn))
    return render(msisdn)


@bp.get("/<msisdn>/screen")
def screen(msisdn: str):
    """The polled partial. Each poll is what makes the number attended. When nothing changed it
    answers 204, which htmx does not swap, so a PIN being typed is left alone."""
    stk.mark_attended(checked(msisdn))
    current = read_screen(msisdn)
    if request.args.get("v") == current.version:
        return "", 204
    return render_template("sandbox/_screen.html", screen=current)


@bp.post("/<msisdn>/prompts/<int:prompt_id>/pay")
def pay(msisdn: str, prompt_id: int):
    req = own_prompt_or_404(checked(msisdn), prompt_id)
    if req.is_open and req.interactive and not PIN.fullmatch(request.form.get("pin", "")):
        return render(msisdn, 422, pin_error="Wrong PIN format: enter 4 digits")
    return answer_prompt(msisdn, req, pay=True)


@bp.post("/<msisdn>/prompts/<int:prompt_id>/cancel")
def cancel(msisdn: str, prompt_id: int):
    return answer_prompt(msisdn, own_prompt_or_404(checked(msisdn), prompt_id), pay=False)
