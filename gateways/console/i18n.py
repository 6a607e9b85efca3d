"""The console's words in Spanish (the default) and English: one table, looked up by key."""

from __future__ import annotations

from typing import Final, Literal

Lang = Literal["es", "en"]
DEFAULT_LANG: Final[Lang] = "es"

# key → (Spanish, English). `{name}` placeholders are filled by `t(..., name=value)`.
LABELS: Final[dict[str, tuple[str, str]]] = {
    # layout
    "brand": ("Touchline · Consola", "Touchline · Console"),
    "nav.programs": ("Programas", "Programs"),
    "nav.campaigns": ("Campañas", "Campaigns"),
    "nav.leads": ("Leads", "Leads"),
    "nav.events": ("Registro de eventos", "Event log"),
    "nav.settings": ("Ajustes", "Settings"),
    "nav.command": ("Command OS", "Command OS"),
    "lang.toggle": ("English", "Español"),
    "logout": ("Salir", "Log out"),
    "yes": ("Sí", "Yes"),
    "no": ("No", "No"),
    "none": ("—", "—"),
    "save": ("Guardar", "Save"),
    "filter": ("Filtrar", "Filter"),
    "any": ("(todos)", "(any)"),
    "newer": ("← Más nuevos", "← Newer"),
    "older": ("Más antiguos →", "Older →"),
    "prev": ("← Anterior", "← Previous"),
    "next": ("Siguiente →", "Next →"),
    "page_of": ("Página {page} de {pages} · {total} en total", "Page {page} of {pages} · {total} in all"),
    # command box
    "command.title": ("Pídele algo a Touchline", "Ask Touchline"),
    "command.placeholder": ("p. ej. ¿qué campañas están activas?", "e.g. which campaigns are active?"),
    "command.send": ("Enviar", "Send"),
    "command.waiting": ("Pensando…", "Thinking…"),
    "command.failed": ("No se pudo enviar: revisa la conexión.", "Could not send: check the connection."),
    "command.you_asked": ("Preguntaste", "You asked"),
    "command.answer": ("Respuesta", "Answer"),
    "command.empty": (
        "Escribe lo que quieres, p. ej. «¿qué campañas están activas?»",
        "Type what you want, e.g. “which campaigns are active?”",
    ),
    "command.too_long": (
        "El texto tiene {n} caracteres; como máximo {max}.",
        "The text is {n} characters; {max} at most.",
    ),
    "command.intro": (
        "Escribe en español o en inglés. Cada orden queda registrada como evento.",
        "Type in Spanish or English. Every command is recorded as an event.",
    ),
    # login
    "login.title": ("Entrar", "Log in"),
    "login.token": ("Token de API", "API token"),
    "login.help": (
        "Pega un token de API de tu cuenta (créalo con `touchline tokens create --account <id>`).",
        "Paste an API token of your account (create one with `touchline tokens create --account <id>`).",
    ),
    "login.submit": ("Entrar", "Log in"),
    "login.expired": (
        "Tu sesión terminó o el token ya no vale: entra de nuevo.",
        "Your session ended or the token is no longer valid: log in again.",
    ),
    "login.missing": ("Pega el token.", "Paste the token."),
    "login.malformed": (
        "Ese token no tiene el formato de Touchline (tl_ y 43 letras, dígitos, - o _): revisa que esté completo.",
        "That is not a Touchline token (tl_ and 43 letters, digits, - or _): check that it was copied whole.",
    ),
    "login.unknown": (
        "Ninguna cuenta tiene ese token (uno recién creado puede tardar un momento).",
        "No account has that token (one just created may take a moment).",
    ),
    "login.revoked": ("Ese token fue revocado el {at}.", "That token was revoked at {at}."),
    "logged_out": ("Sesión cerrada.", "Logged out."),
    # errors
    "error.403.title": ("Prohibido", "Forbidden"),
    "error.403": (
        "El formulario no trae un código de seguridad válido (CSRF): recarga la página e inténtalo de nuevo.",
        "The form carries no valid security code (CSRF): reload the page and try again.",
    ),
    "error.404.title": ("No encontrado", "Not found"),
    "error.404": ("No hay nada así en esta cuenta.", "There is nothing like that in this account."),
    "error.503.title": ("No disponible", "Unavailable"),
    "error.503": (
        "Falta un modelo de lectura: arranca `touchline up` (con el rol de proyecciones) y reintenta.",
        "A read model is not built yet: run `touchline up` (with the projections role) and retry.",
    ),
    "error.db": (
        "La base de datos no responde ahora: reintenta en un momento.",
        "The database is unavailable right now: retry in a moment.",
    ),
    "error.title": ("Error", "Error"),
    # statuses
    "status.Live": ("En vivo", "Live"),
    "status.Degraded": ("Degradado", "Degraded"),
    "status.Disabled": ("Desactivado", "Disabled"),
    "status.Pending": ("Pendiente", "Pending"),
    "task.queued": ("en cola", "queued"),
    "task.claimed": ("tomadas", "claimed"),
    "task.done": ("hechas", "done"),
    "task.failed": ("fallidas", "failed"),
    "task.cancelled": ("canceladas", "cancelled"),
    # programs
    "programs.title": ("Programas de LeadGen", "LeadGen programs"),
    "programs.intro": (
        "Cada programa es una fuente de leads que corre por ciudad. Estado según la definición del spec "
        "(tareas de los últimos 60 minutos).",
        "Each program is a lead source running per city. Status by the spec's definition (tasks of the last "
        "60 minutes).",
    ),
    "programs.city": ("Ciudad", "City"),
    "programs.status": ("Estado", "Status"),
    "programs.running": ("Corriendo", "Running"),
    "programs.tasks_60m": ("Tareas 60 min", "Tasks 60 min"),
    "programs.last_success": ("Último éxito", "Last success"),
    "programs.errors": ("Errores principales", "Top errors"),
    "programs.next_action": ("Siguiente paso", "Next action"),
    "programs.actions": ("Acciones", "Actions"),
    "programs.start": ("Iniciar", "Start"),
    "programs.stop": ("Detener", "Stop"),
    "programs.start_city": ("Iniciar en una ciudad", "Start in a city"),
    "programs.no_cities": ("Ninguna ciudad todavía.", "No city yet."),
    "programs.leads_24h": ("Leads 24 h", "Leads 24 h"),
    "programs.started": ("Programa iniciado: {program} {city}.", "Program started: {program} {city}."),
    "programs.discover_queued": ("Búsqueda encolada: {program} {city}.", "Discover queued: {program} {city}."),
    "programs.stopped": ("Programa detenido: {program} {city}.", "Program stopped: {program} {city}."),
    "programs.not_running": ("{program} {city} no estaba corriendo.", "{program} {city} was not running."),
    "programs.needs_setup": (
        "Falta el LeadGen routing para iniciar {program} {city}.",
        "LeadGen routing is needed to start {program} {city}.",
    ),
    "programs.needs_confirmation": (
        "{program} {city} ya está corriendo. ¿Buscar anuncios nuevos ahora?",
        "{program} {city} runs already. Look for new listings now?",
    ),
    "programs.confirm_override": ("Iniciar sin routing (override)", "Start without routing (override)"),
    "programs.confirm_discover": ("Sí, buscar ahora", "Yes, look now"),
    "programs.go_settings": ("Configurar el routing", "Set up routing"),
    "programs.rejected": ("No se pudo: {message}", "Could not: {message}"),
    # campaigns
    "campaigns.title": ("Campañas salientes", "Outbound campaigns"),
    "campaigns.intro": (
        "La única verdad de encendido/apagado es campaigns.is_active.",
        "The only on/off truth is campaigns.is_active.",
    ),
    "campaigns.name": ("Nombre", "Name"),
    "campaigns.key": ("Clave", "Key"),
    "campaigns.state": ("Estado", "State"),
    "campaigns.steps": ("Pasos", "Steps"),
    "campaigns.touches_24h": ("Toques 24 h (enviados / fallidos)", "Touches 24 h (sent / failed)"),
    "campaigns.last_touch": ("Último toque", "Last touch"),
    "campaigns.toggle": ("Cambiar", "Toggle"),
    "campaigns.active": ("Activa", "Active"),
    "campaigns.paused": ("Pausada", "Paused"),
    "campaigns.activate": ("Activar", "Activate"),
    "campaigns.pause": ("Pausar", "Pause"),
    "campaigns.pause_all": ("Pausar todas las activas", "Pause all running"),
    "campaigns.none": ("No hay campañas todavía.", "There are no campaigns yet."),
    "campaigns.activated": ("{name} ahora está activa.", "{name} is now active."),
    "campaigns.paused_one": ("{name} ahora está pausada.", "{name} is now paused."),
    "campaigns.unchanged": ("{name} ya estaba así.", "{name} was like that already."),
    "campaigns.paused_all": ("Pausé {n} campaña(s).", "Paused {n} campaign(s)."),
    # leads
    "leads.title": ("Leads", "Leads"),
    "leads.lead": ("Lead", "Lead"),
    "leads.phone": ("Teléfono", "Phone"),
    "leads.source": ("Fuente", "Source"),
    "leads.city": ("Ciudad", "City"),
    "leads.status": ("Estado", "Status"),
    "leads.state": ("Temperatura", "Lead state"),
    "leads.next_action": ("Siguiente acción", "Next action"),
    "leads.when": ("Cuándo", "When"),
    "leads.priority": ("Prioridad", "Priority"),
    "leads.channel": ("Canal", "Channel"),
    "leads.created": ("Creado", "Created"),
    "leads.none": ("No hay leads con ese filtro.", "No leads match that."),
    "leads.history": ("Historial (del registro de eventos)", "History (from the event log)"),
    "leads.details": ("Datos", "Details"),
    "leads.not_projected": (
        "El modelo de lectura aún no tiene este lead; el historial sí.",
        "The read model does not have this lead yet; the history does.",
    ),
    "leads.not_found": ("No hay un lead {id} en esta cuenta.", "There is no lead {id} in this account."),
    "leads.back": ("← Todos los leads", "← All leads"),
    # events
    "events.title": ("Registro de eventos", "Event log"),
    "events.type": ("Tipo", "Type"),
    "events.stream": ("Stream", "Stream"),
    "events.stream_filter": ("Stream (empieza por)", "Stream (starts with)"),
    "events.position": ("Posición", "Position"),
    "events.recorded": ("Registrado", "Recorded"),
    "events.data": ("Datos", "Data"),
    "events.follow": ("Seguir en vivo", "Follow live"),
    "events.none": ("No hay eventos con ese filtro.", "No events match that."),
    "events.version": ("Versión", "Version"),
    # settings
    "settings.title": ("Ajustes · Onboarding", "Settings · Onboarding"),
    "settings.step1": ("Paso 1 · Identidad", "Step 1 · Identity"),
    "settings.step2": ("Paso 2 · Contacto", "Step 2 · Contact"),
    "settings.step3": ("Paso 3 · LeadGen routing", "Step 3 · LeadGen routing"),
    "settings.business_name": ("Nombre del negocio", "Business name"),
    "settings.vertical": ("Vertical", "Vertical"),
    "settings.contact_email": ("Correo de contacto", "Contact email"),
    "settings.contact_phone": ("Teléfono (E.164)", "Phone (E.164)"),
    "settings.contact_whatsapp": ("WhatsApp (E.164)", "WhatsApp (E.164)"),
    "settings.dealer_address": ("Dirección del concesionario", "Dealer address"),
    "settings.radius_miles": ("Radio (millas, 1 a 50)", "Radius (miles, 1 to 50)"),
    "settings.city_fallback": ("Ciudad de respaldo", "Fallback city"),
    "settings.active": ("Routing activo", "Routing active"),
    "settings.saved1": ("Paso 1 guardado.", "Step 1 saved."),
    "settings.saved2": ("Paso 2 guardado: identidad y contacto.", "Step 2 saved: identity and contact."),
    "settings.saved3": ("Paso 3 guardado: LeadGen routing.", "Step 3 saved: LeadGen routing."),
    "settings.draft1": (
        "Paso 1 listo: se guarda junto con el correo de contacto (paso 2).",
        "Step 1 is ready: it is saved with the contact email (step 2).",
    ),
    "settings.senders": ("Remitentes propios", "Your own senders"),
    "settings.senders_help": (
        "Los números y el correo desde los que salen los mensajes de esta cuenta. Vacío: los del despliegue.",
        "The numbers and address this account's messages go out from. Empty: the deployment's.",
    ),
    "settings.sender_sms": ("SMS (E.164)", "SMS (E.164)"),
    "settings.sender_voice": ("Llamadas (E.164)", "Calls (E.164)"),
    "settings.sender_whatsapp": (
        "WhatsApp (E.164 con Twilio, o phone number id de Meta)",
        "WhatsApp (E.164 for Twilio, or Meta's phone number id)",
    ),
    "settings.sender_email": ("Correo remitente", "Sender email"),
    "settings.saved_senders": ("Remitentes guardados.", "Senders saved."),
    "settings.fix": ("Corrige el campo marcado.", "Fix the field marked."),
    "settings.radius_number": ("debe ser un número entero de 1 a 50", "must be a whole number from 1 to 50"),
    "settings.done": ("hecho", "done"),
    "settings.todo": ("pendiente", "to do"),
}


def t(lang: Lang, key: str, **values: object) -> str:
    """The label in `lang`, placeholders filled; an unknown key is shown as itself (never an error)."""
    pair = LABELS.get(key)
    text = key if pair is None else pair[0] if lang == "es" else pair[1]
    return text.format(**values) if values else text


def parse_lang(raw: str | None) -> Lang:
    return "en" if (raw or "").strip().lower() == "en" else DEFAULT_LANG
