"""The Paystack simulator's objects as Paystack shows them (verify, transfers, refunds and the
webhooks' data): its ids, codes, snake- and camel-case timestamp twins, `domain`, and the
metadata echoed exactly as it was sent."""

import hashlib
import json
import secrets
import string
from datetime import timedelta

from portal.models import (
    SandboxPaystackRecipient,
    SandboxPaystackRefund,
    SandboxPaystackTransaction,
    SandboxPaystackTransfer,
)
from portal.sandbox.paystack.integrations import DOMAIN, public_id
from portal.timeutil import iso_z

# Paystack's ids are large numbers; the simulator's are its row ids moved into their range.
TRANSACTION_IDS, RECIPIENT_IDS, TRANSFER_IDS, REFUND_IDS = 4_000_000_000, 56_000_000, 860_000_000, 12_000_000
BANKS = {"MPESA": "M-PESA", "MPTILL": "M-PESA Till", "MPPAYBILL": "M-PESA Paybill"}
LOWER_ALNUM = string.ascii_lowercase + string.digits


def code(length: int, prefix: str = "") -> str:
    """Paystack's generated codes and references: lowercase letters and digits ("re4lyvq3s3")."""
    return prefix + "".join(secrets.choice(LOWER_ALNUM) for _ in range(length))


def transaction_id(tx: SandboxPaystackTransaction) -> int:
    return TRANSACTION_IDS + tx.id


def metadata_of(stored: str | None):
    return json.loads(stored) if stored else ""


def customer(integration_id: int, email: str, phone: str | None = None) -> dict:
    """One customer per email and integration, as Paystack keeps them."""
    digest = hashlib.sha256(f"{integration_id}:{email.lower()}".encode()).hexdigest()
    return {
        "id": 180_000_000 + int(digest[:7], 16),
        "first_name": None,
        "last_name": None,
        "email": email,
        "customer_code": "CUS_" + digest[7:22],
        "phone": phone,
        "metadata": None,
        "risk_action": "default",
        "international_format_phone": phone,
    }


def transaction(tx: SandboxPaystackTransaction) -> dict:
    """The transaction object of verify, /charge/:reference and charge.success."""
    paid, created = iso_z(tx.paid_at), iso_z(tx.created_at)
    return {
        "id": transaction_id(tx),
        "domain": DOMAIN,
        "status": tx.status,
        "reference": tx.reference,
        "receipt_number": tx.receipt_number,
        "amount": tx.amount,
        "message": tx.message,
        "gateway_response": tx.gateway_response,
        "paid_at": paid,
        "created_at": created,
        "channel": tx.channel,
        "currency": tx.currency,
        "ip_address": tx.ip_address,
        "metadata": metadata_of(tx.metadata_json),
        "log": None,
        "fees": tx.fees,
        "fees_split": None,
        "authorization": tx.authorization or {},
        "customer": customer(tx.integration_id, tx.email, tx.phone),
        "plan": None,
        "split": {},
        "order_id": None,
        "paidAt": paid,
        "createdAt": created,
        "requested_amount": tx.amount,
        "pos_transaction_data": None,
        "source": None,
        "fees_breakdown": None,
        "connect": None,
        "transaction_date": created,
        "plan_object": {},
        "subaccount": {},
    }


def mobile_money_authorization(phone: str) -> dict:
    """What a paid M-Pesa charge shows (Paystack's Ghana mobile-money sample, M-Pesa's names)."""
    local = "0" + phone[4:]
    return {
        "authorization_code": code(10, "AUTH_"),
        "bin": local[:3] + "XXX",
        "last4": "X" + local[-3:],
        "exp_month": "12",
        "exp_year": "9999",
        "channel": "mobile_money",
        "card_type": "",
        "bank": "M-PESA",
        "country_code": "KE",
        "brand": "M-PESA",
        "reusable": False,
        "signature": None,
        "account_name": None,
        "mobile_money_number": local,
    }


def card_authorization(number: str) -> dict:
    visa = number.startswith("4")
    return {
        "authorization_code": code(10, "AUTH_"),
        "bin": number[:6],
        "last4": number[-4:],
        "exp_month": "12",
        "exp_year": "2030",
        "channel": "card",
        "card_type": "visa " if visa else "mastercard ",
        "bank": "TEST BANK",
        "country_code": "KE",
        "brand": "visa" if visa else "mastercard",
        "reusable": True,
        "signature": code(20, "SIG_"),
        "account_name": None,
    }


def recipient(row: SandboxPaystackRecipient) -> dict:
    return {
        "active": True,
        "createdAt": iso_z(row.created_at),
        "currency": row.currency,
        "description": row.description,
        "domain": DOMAIN,
        "email": row.email,
        "id": RECIPIENT_IDS + row.id,
        "integration": public_id(row.integration_id),
        "metadata": json.loads(row.metadata_json) if row.metadata_json else None,
        "name": row.name,
        "recipient_code": row.recipient_code,
        "type": row.type,
        "updatedAt": iso_z(row.updated_at),
        "is_deleted": False,
        "isDeleted": False,
        "details": {
            "authorization_code": None,
            "account_number": row.account_number,
            "account_name": row.name,
            "bank_code": row.bank_code,
            "bank_name": BANKS[row.bank_code],
        },
    }


def transfer_queued(row: SandboxPaystackTransfer, recipient_row: SandboxPaystackRecipient) -> dict:
    """A transfer as POST /transfer answers it: the recipient by its id."""
    return {
        "transfersessionid": [],
        "transfertrials": [],
        "domain": DOMAIN,
        "amount": row.amount,
        "currency": row.currency,
        "reference": row.reference,
        "source": "balance",
        "source_details": None,
        "reason": row.reason,
        "status": row.status,
        "failures": None,
        "transfer_code": row.transfer_code,
        "titan_code": None,
        "transferred_at": iso_z(row.transferred_at),
        "id": TRANSFER_IDS + row.id,
        "integration": public_id(row.integration_id),
        "request": 700_000_000 + row.id,
        "recipient": RECIPIENT_IDS + recipient_row.id,
        "createdAt": iso_z(row.created_at),
        "updatedAt": iso_z(row.updated_at),
    }


def transfer(row: SandboxPaystackTransfer, recipient_row: SandboxPaystackRecipient, business_name: str) -> dict:
    """A transfer as verify and the transfer.* webhooks show it: the whole recipient, the session."""
    return {
        "amount": row.amount,
        "currency": row.currency,
        "domain": DOMAIN,
        "failures": None,
        "id": TRANSFER_IDS + row.id,
        "integration": {"id": public_id(row.integration_id), "is_live": False, "business_name": business_name},
        "reason": row.reason,
        "reference": row.reference,
        "source": "balance",
        "source_details": None,
        "status": row.status,
        "titan_code": None,
        "transfer_code": row.transfer_code,
        "transferred_at": iso_z(row.transferred_at),
        "createdAt": iso_z(row.created_at),
        "updatedAt": iso_z(row.updated_at),
        "recipient": recipient(recipient_row),
        "session": {"provider": "mpesa" if row.status != "pending" else None, "id": None},
        "fee_charged": 0,
        "gateway_response": row.gateway_response,
    }


def refund(row: SandboxPaystackRefund, tx: SandboxPaystackTransaction) -> dict:
    auth = tx.authorization or {}
    created = iso_z(row.created_at)
    return {
        "transaction": {
            "id": transaction_id(tx),
            "domain": DOMAIN,
            "reference": tx.reference,
            "amount": tx.amount,
            "paid_at": iso_z(tx.paid_at),
            "channel": tx.channel,
            "currency": tx.currency,
            "authorization": {
                "exp_month": auth.get("exp_month"),
                "exp_year": auth.get("exp_year"),
                "account_name": auth.get("account_name"),
            },
            "customer": customer(tx.integration_id, tx.email, tx.phone),
            "plan": {},
            "subaccount": {},
            "split": {},
            "order_id": None,
            "paidAt": iso_z(tx.paid_at),
            "pos_transaction_data": None,
            "source": None,
            "fees_breakdown": None,
            "connect": None,
        },
        "integration": public_id(tx.integration_id),
        "deducted_amount": row.amount,
        "channel": tx.channel,
        "merchant_note": row.merchant_note,
        "customer_note": row.customer_note,
        "status": row.status,
        "refunded_by": "sandbox@paystack.simulator",
        "expected_at": iso_z(row.created_at + timedelta(days=7)),
        "currency": row.currency,
        "domain": DOMAIN,
        "amount": row.amount,
        "fully_deducted": True,
        "id": REFUND_IDS + row.id,
        "createdAt": created,
        "updatedAt": iso_z(row.processed_at or row.created_at),
    }


def refund_event(row: SandboxPaystackRefund, tx: SandboxPaystackTransaction) -> dict:
    """The data of refund.* webhooks (a shape of its own, per Paystack's samples)."""
    return {
        "status": row.status,
        "transaction_reference": tx.reference,
        "refund_reference": f"RF{REFUND_IDS + row.id}" if row.status == "processed" else None,
        "amount": row.amount,
        "currency": row.currency,
        "processor": "mpesa" if tx.channel == "mobile_money" else "card",
        "customer": {"first_name": None, "last_name": None, "email": tx.email},
        "integration": public_id(tx.integration_id),
        "domain": DOMAIN,
    }
