"""Sends a template message and a text message through optin's proxy with pywa, unmodified.

Used by the end-to-end test `proxy::pywa` (crates/optin/tests/it/proxy/pywa.rs), which installs
the pinned pywa in a virtualenv and runs:

    python send.py OPTIN_URL BUSINESS_ID API_KEY PHONE_NUMBER_ID TO

pywa is configured as a business would configure it to use optin: the optin business API key
is its token, and its HTTP session's base URL is optin's proxy instead of graph.facebook.com
(pywa 4.5 has no base URL option and sets Graph's on the session it is given, so the base URL is
set on that session afterwards). Prints one JSON object per send: the sent message's id, or the
API error pywa raised; with the URL and the body pywa posted (observed by an httpx request hook).
"""

import json
import sys

import httpx
from pywa import WhatsApp
from pywa.errors import WhatsAppError
from pywa.types.templates import TemplateLanguage

API_VERSION = "23.0"


def main() -> None:
    optin_url, business_id, api_key, phone_number_id, to = sys.argv[1:6]
    posted = []
    session = httpx.Client(timeout=30, event_hooks={"request": [lambda request: posted.append(request)]})
    wa = WhatsApp(phone_id=phone_number_id, token=api_key, session=session, api_version=API_VERSION)
    session.base_url = f"{optin_url}/proxy/{business_id}/v{API_VERSION}"

    sends = {
        "template": lambda: wa.send_template(
            to=to, name="spring_sale", language=TemplateLanguage.ENGLISH_US, params=[]
        ),
        "text": lambda: wa.send_message(to=to, text="Your order shipped."),
    }
    for kind, send in sends.items():
        posted.clear()
        try:
            sent = send()
            result = {"kind": kind, "ok": True, "id": sent.id}
        except WhatsAppError as error:
            result = {
                "kind": kind,
                "ok": False,
                "error_class": type(error).__name__,
                "status_code": error.status_code,
                "code": error.code,
                "message": error.message,
                "details": error.details,
                "fbtrace_id": error.fbtrace_id,
                "optin_reasons": error.raw.get("optin_reasons"),
            }
        result["url"] = str(posted[0].url) if posted else None
        result["sent_body"] = json.loads(posted[0].content) if posted else None
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
