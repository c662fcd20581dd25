"""Outgoing webhooks: each is one user's, gets the public events that user may see, signed with its secret
(encrypted at rest). Logstream delivers them (services/logstream/webhooks.py); here they are saved, listed,
removed, and their delivery log read or a delivery sent again."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import func, select, update

from services.api.auth import audit
from services.api.deps import CurrentUser, IdPath, SessionDep, SettingsDep
from services.api.schemas import Envelope, WebhookCreate, WebhookDeliveryPublic, WebhookPublic
from shared.db.models import User, Webhook, WebhookDelivery
from shared.errors import ErrorCode, PortsideError
from shared.secrets import Cipher
from shared.webhooks import check_events, check_webhook_url

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


async def _own(session: SessionDep, webhook_id: int, user: User) -> Webhook:
    row = await session.get(Webhook, webhook_id)
    if row is None or row.owner_id != user.id:
        raise PortsideError(
            ErrorCode.WEBHOOK_NOT_FOUND, f"You have no webhook {webhook_id}; list yours with GET /api/webhooks."
        )
    return row


@router.post("", status_code=201, response_model=Envelope[WebhookPublic])
async def create_webhook(
    body: WebhookCreate, request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Envelope[WebhookPublic]:
    """POST every public event you may see among `events` to `url`, signed with `secret`
    (`X-Portside-Signature: sha256=<hex>` over the raw body, and `X-Portside-Timestamp`)."""
    row = Webhook(
        owner_id=user.id, url=check_webhook_url(body.url, settings), events=check_events(body.events),
        secret_encrypted=Cipher(settings).encrypt(body.secret),
    )
    session.add(row)
    await session.flush()
    await audit(session, request, user, "webhook_created", f"webhook:{row.id}", row.url)
    await session.commit()
    return Envelope(data=WebhookPublic.model_validate(row))


@router.get("", response_model=Envelope[list[WebhookPublic]])
async def list_webhooks(user: CurrentUser, session: SessionDep) -> Envelope[list[WebhookPublic]]:
    rows = (await session.scalars(select(Webhook).where(Webhook.owner_id == user.id).order_by(Webhook.id))).all()
    return Envelope(data=[WebhookPublic.model_validate(r) for r in rows])


@router.delete("/{webhook_id}", response_model=Envelope[WebhookPublic])
async def delete_webhook(
    webhook_id: IdPath, request: Request, user: CurrentUser, session: SessionDep
) -> Envelope[WebhookPublic]:
    """Stop delivering; its delivery log goes with it."""
    row = await _own(session, webhook_id, user)
    public = WebhookPublic.model_validate(row)
    await session.delete(row)
    await audit(session, request, user, "webhook_deleted", f"webhook:{webhook_id}", public.url)
    await session.commit()
    return Envelope(data=public)


@router.get("/{webhook_id}/deliveries", response_model=Envelope[list[WebhookDeliveryPublic]])
async def list_deliveries(
    webhook_id: IdPath, user: CurrentUser, session: SessionDep
) -> Envelope[list[WebhookDeliveryPublic]]:
    """The newest 100 deliveries: pending, delivered, or failed after the last attempt."""
    await _own(session, webhook_id, user)
    rows = (await session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.id.desc()).limit(100)
    )).all()
    return Envelope(data=[WebhookDeliveryPublic.model_validate(r) for r in rows])


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202,
             response_model=Envelope[WebhookDeliveryPublic])
async def redeliver(
    webhook_id: IdPath, delivery_id: IdPath, user: CurrentUser, session: SessionDep
) -> Envelope[WebhookDeliveryPublic]:
    """Send the same body again now, with a fresh set of attempts (delivered or given up alike)."""
    await _own(session, webhook_id, user)
    row = await session.scalar(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == webhook_id)
        .values(status="pending", attempts=0, next_attempt_at=func.now(), delivered_at=None)
        .returning(WebhookDelivery)
    )
    if row is None:
        raise PortsideError(ErrorCode.DELIVERY_NOT_FOUND, f"Webhook {webhook_id} has no delivery {delivery_id}; list "
                            f"them with GET /api/webhooks/{webhook_id}/deliveries.")
    await session.commit()
    return Envelope(data=WebhookDeliveryPublic.model_validate(row))
