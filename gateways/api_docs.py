"""What every route of the HTTP API is, for the OpenAPI document (`gateways/openapi.py`)."""

from __future__ import annotations

from gateways.api_command_os import CommandBody
from gateways.api_programs import StartBody, StopBody
from gateways.openapi import Operation, Param, document_routes

KEY = Param(name="key", where="path", description="`craigslist`, `encuentra24`, or `craigslist:miami`")
CITY = Param(name="city", description="one city of the program")

document_routes(
    Operation(method="GET", path="/health", summary="PostgreSQL answers", tag="system", auth="none"),
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
