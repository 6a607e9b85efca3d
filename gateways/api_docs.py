"""What every route of the HTTP API is, for the OpenAPI document (`gateways/openapi.py`)."""

from __future__ import annotations

from gateways.api_command_os import CommandBody
from gateways.api_core import CreateCampaignBody, ReasonBody, SettingsBody
from gateways.api_programs import StartBody, StopBody
from gateways.command_bus import COMMANDS as COMMAND_NAMES
from gateways.openapi import Operation, Param, document_routes

LIMIT = Param(name="limit", type="integer", description="page size")
OFFSET = Param(name="offset", type="integer", description="rows to skip")
CAMPAIGN = Param(name="campaign_id", where="path", description="uuid")
KEY = Param(name="key", where="path", description="`craigslist`, `encuentra24`, or `craigslist:miami`")
CITY = Param(name="city", description="one city of the program")

document_routes(
    Operation(method="GET", path="/health", summary="PostgreSQL answers", tag="system", auth="none"),
    Operation(method="GET", path="/healthz", summary="PostgreSQL answers (alias)", tag="system", auth="none"),
    Operation(
        method="GET",
        path="/metrics",
        summary="Prometheus text: the log, touch runs, leads, campaigns",
        tag="system",
        produces="text/plain",
    ),
    Operation(
        method="GET",
        path="/api/debug/openai-env",
        summary="Which OpenAI variables exist (length, prefix; never a value)",
        tag="system",
    ),
    Operation(
        method="GET", path="/api/campaigns", summary="The account's outbound campaigns with steps", tag="campaigns"
    ),
    Operation(
        method="POST",
        path="/api/campaigns",
        summary="Create a campaign (and activate it)",
        tag="campaigns",
        body=CreateCampaignBody,
    ),
    Operation(
        method="POST",
        path="/api/campaigns/pause-all",
        summary="Pause every running campaign",
        tag="campaigns",
        body=ReasonBody,
    ),
    Operation(
        method="POST",
        path="/api/campaigns/{campaign_id}/activate",
        summary="Switch a campaign on",
        tag="campaigns",
        body=ReasonBody,
        params=(CAMPAIGN,),
    ),
    Operation(
        method="POST",
        path="/api/campaigns/{campaign_id}/pause",
        summary="Switch a campaign off",
        tag="campaigns",
        body=ReasonBody,
        params=(CAMPAIGN,),
    ),
    Operation(
        method="GET",
        path="/api/leads",
        summary="Leads, newest first, paginated",
        tag="leads",
        params=(Param(name="status"), Param(name="source"), LIMIT, OFFSET),
    ),
    Operation(
        method="GET",
        path="/api/leads/{lead_id}",
        summary="A lead with its next action, touch runs, inbox and event history",
        tag="leads",
        params=(Param(name="lead_id", where="path"),),
    ),
    Operation(
        method="GET",
        path="/api/next-actions",
        summary="What to do next, per lead, by priority",
        tag="leads",
        params=(LIMIT, OFFSET),
    ),
    Operation(
        method="GET",
        path="/api/runtime-status",
        summary="v_campaign_runtime_status_v1 for the account",
        tag="campaigns",
    ),
    Operation(
        method="GET", path="/api/settings", summary="Onboarding settings, routing and daily caps", tag="settings"
    ),
    Operation(
        method="PUT",
        path="/api/settings",
        summary="Change settings (all or nothing)",
        tag="settings",
        body=SettingsBody,
    ),
    Operation(
        method="GET",
        path="/api/audit",
        summary="The account's events from the log, filtered, by position",
        tag="audit",
        params=(
            Param(name="stream"),
            Param(name="type", repeat=True),
            Param(name="correlation_id"),
            Param(name="since"),
            Param(name="until"),
            Param(name="after", type="integer"),
            Param(name="limit", type="integer"),
        ),
    ),
    Operation(method="GET", path="/api/openapi.json", summary="This document", tag="system", auth="none"),
    Operation(
        method="GET",
        path="/api/programs/list",
        summary="Every LeadGen program with its cities and health",
        tag="programs",
    ),
    Operation(
        method="GET",
        path="/api/programs/{key}",
        summary="A program's health, throughput, output, events, next action",
        tag="programs",
        params=(KEY, CITY),
    ),
    Operation(
        method="POST",
        path="/api/programs/{key}/start",
        summary="Start a program in a city (409 needs confirmation, 412 needs routing)",
        tag="programs",
        body=StartBody,
        params=(KEY,),
    ),
    Operation(
        method="POST",
        path="/api/programs/{key}/stop",
        summary="Stop a program in a city",
        tag="programs",
        body=StopBody,
        params=(KEY,),
    ),
    Operation(
        method="POST",
        path="/api/commands/{name}",
        summary=(
            "A command by name (the bus's commands: " + ", ".join(sorted(COMMAND_NAMES)) + "), its JSON object "
            "as the body; answered with the events it produced. Idempotency-Key makes a retry answer from the log"
        ),
        tag="commands",
        params=(
            Param(name="name", where="path", description="one of " + ", ".join(sorted(COMMAND_NAMES))),
            Param(name="Idempotency-Key", where="header", description="the command id (a UUID, or any text)"),
        ),
    ),
    Operation(
        method="POST",
        path="/api/command-os",
        summary="What the operator typed (Spanish or English), carried out and answered",
        tag="command-os",
        body=CommandBody,
    ),
    Operation(
        method="POST",
        path="/webhooks/twilio/sms",
        summary="Twilio inbound SMS and WhatsApp",
        tag="webhooks",
        auth="twilio",
        produces="text/xml",
    ),
    Operation(
        method="POST",
        path="/webhooks/twilio/status",
        summary="Twilio message and call status",
        tag="webhooks",
        auth="twilio",
        params=(Param(name="touch", required=True),),
    ),
    Operation(
        method="POST",
        path="/webhooks/twilio/voice",
        summary="Twilio voice: TwiML streaming the call",
        tag="webhooks",
        auth="twilio",
        produces="text/xml",
    ),
    Operation(
        method="POST",
        path="/webhooks/telnyx/messaging",
        summary="Telnyx inbound SMS and message status",
        tag="webhooks",
        auth="telnyx",
        params=(Param(name="touch"),),
    ),
    Operation(
        method="GET",
        path="/webhooks/meta/whatsapp",
        summary="Meta's subscription check: echoes hub.challenge for our hub.verify_token",
        tag="webhooks",
        auth="meta",
        produces="text/plain",
        params=(
            Param(name="hub.mode", required=True),
            Param(name="hub.verify_token", required=True),
            Param(name="hub.challenge", required=True),
        ),
    ),
    Operation(
        method="POST",
        path="/webhooks/meta/whatsapp",
        summary="Meta WhatsApp Cloud API: inbound messages and message statuses",
        tag="webhooks",
        auth="meta",
    ),
    Operation(
        method="GET",
        path="/webhooks/elastic",
        summary="ElasticEmail HTTP web notification: sent, opened, clicked, bounce, complaint, unsubscribe",
        tag="webhooks",
        auth="elastic",
        params=(
            Param(name="token", required=True, description="ELASTIC_EMAIL_WEBHOOK_TOKEN: ElasticEmail signs nothing"),
            Param(name="status", required=True),
            Param(name="postback", description="the touch run id sent with the email"),
            Param(name="messageid"),
            Param(name="transaction"),
            Param(name="category", description="the bounce category of an Error"),
            Param(name="date"),
        ),
    ),
    Operation(
        method="POST",
        path="/webhooks/elastic",
        summary="ElasticEmail HTTP web notification, as a form POST",
        tag="webhooks",
        auth="elastic",
        params=(Param(name="token", required=True, description="ELASTIC_EMAIL_WEBHOOK_TOKEN"),),
    ),
    Operation(
        method="POST",
        path="/webhooks/telnyx/voice",
        summary="Telnyx Call Control events",
        tag="webhooks",
        auth="telnyx",
    ),
    Operation(
        method="GET",
        path="/telnyx",
        summary="Telnyx media stream (WebSocket)",
        tag="voice",
        auth="stream-token",
        params=(Param(name="token", required=True),),
    ),
    Operation(
        method="GET",
        path="/twilio",
        summary="Twilio Media Streams (WebSocket)",
        tag="voice",
        auth="stream-token",
        params=(Param(name="token", required=True),),
    ),
)
