"""The spec's lead truth surfaces, as views over the read-model tables (recreated whenever one is swapped).

`public.lead_next_action_view_v5` — one row per lead: what to do next, when, on which channel.

    next_action        'do_not_contact'  suppressed, or lead_state dead
                       'follow_up_reply' the lead answered: a person should reply (next_action_at = the reply)
                       'call' / 'send_sms' / 'send_whatsapp' / 'send_email'
                                         its next touch run waiting (scheduled or retry), at its time
                       'enroll'          new, with a phone, and no touch run yet: no active campaign took it
                       'wait'            anything else (its cadence is done or in flight)
    priority_score     0 when do_not_contact; else lead_state (hot 60, warm 40, cold 20)
                       + 30 if it replied + 10 if first seen in the last 24 h (5 in the last 7 days)
                       + 5 if it has a phone, capped at 100. Higher first.
    recommended_action = next_action; recommended_delay_minutes = minutes until next_action_at
    (0 when due or none); recommended_channel = the next touch's channel, or the reply's;
    effective_channel = recommended_channel unless that channel is bad data for the lead
    (`invalid_channels`), then the first usable of sms, whatsapp, voice.
"""

from __future__ import annotations

from typing import Final

from projections.model import View

LEAD_NEXT_ACTION: Final = View(
    schema="public",
    name="lead_next_action_view_v5",
    sql="""
with next_touch as (
    select distinct on (lead_id) lead_id, campaign_id, channel, scheduled_for
      from public.touch_runs
     where status in ('scheduled', 'retry_scheduled')
     order by lead_id, scheduled_for, step
), last_touch as (
    select distinct on (lead_id) lead_id, campaign_id
      from public.touch_runs
     order by lead_id, created_at desc
), decided as (
    select l.id as lead_id, l.account_id, coalesce(n.campaign_id, t.campaign_id) as campaign_id, l.lead_state,
           l.status, l.phone, l.created_at, l.invalid_channels, l.last_reply_at, l.last_reply_channel,
           case
               when l.status = 'suppressed' or l.lead_state = 'dead' then 'do_not_contact'
               when l.status = 'replied' then 'follow_up_reply'
               when n.lead_id is not null then
                   case n.channel when 'voice' then 'call' else 'send_' || n.channel end
               when l.status = 'new' and l.phone is not null and t.lead_id is null then 'enroll'
               else 'wait'
           end as next_action,
           case
               when l.status = 'replied' then l.last_reply_at
               else n.scheduled_for
           end as next_action_at,
           case when l.status = 'replied' then l.last_reply_channel else n.channel end as recommended_channel
      from public.leads l
      left join next_touch n on n.lead_id = l.id
      left join last_touch t on t.lead_id = l.id
)
select d.lead_id, d.campaign_id, d.lead_state,
       case when d.next_action = 'do_not_contact' then 0
            else least(100,
                 case d.lead_state when 'hot' then 60 when 'warm' then 40 else 20 end
                 + case when d.last_reply_at is not null then 30 else 0 end
                 + case when d.created_at > now() - interval '24 hours' then 10
                        when d.created_at > now() - interval '7 days' then 5 else 0 end
                 + case when d.phone is not null then 5 else 0 end)
       end as priority_score,
       d.next_action, d.next_action_at,
       d.next_action as recommended_action,
       greatest(0, ceil(extract(epoch from (d.next_action_at - now())) / 60))::integer as recommended_delay_minutes,
       d.recommended_channel,
       case
           when d.recommended_channel is null then null
           when not d.invalid_channels ? d.recommended_channel then d.recommended_channel
           else (select c from unnest(array['sms', 'whatsapp', 'voice']) c
                  where not d.invalid_channels ? c limit 1)
       end as effective_channel,
       d.account_id
  from decided d
""",
)

LEAD_ENRICHED: Final = View(
    schema="public",
    name="lead_enriched",
    sql="""
select l.id as lead_id, l.account_id, l.source, l.external_id, l.title, l.price, l.city, l.neighborhood,
       l.latitude, l.longitude, l.phone, l.email, l.name, l.url, l.posted_at, l.first_seen_at,
       l.attributes->>'year' as year, l.attributes->>'make_model' as make_model,
       l.attributes->>'odometer' as odometer, l.attributes, l.status, l.lead_state, l.created_at
  from public.leads l
""",
)

MULTICHANNEL_SIGNALS: Final = View(
    schema="public",
    name="multichannel_lead_signals",
    sql="""
select l.id as lead_id, l.account_id,
       count(t.id) as touch_runs,
       count(t.id) filter (where t.channel = 'voice' and t.status = 'dispatched') as calls,
       count(t.id) filter (where t.channel = 'sms' and t.status = 'dispatched') as sms_sent,
       count(t.id) filter (where t.channel = 'whatsapp' and t.status = 'dispatched') as whatsapp_sent,
       count(t.id) filter (where t.channel = 'email' and t.status = 'dispatched') as emails_sent,
       count(t.id) filter (where t.delivery_status = 'delivered') as delivered,
       count(t.id) filter (where t.status in ('failed', 'dead_letter')) as failed,
       max(t.dispatched_at) as last_outbound_at,
       l.last_reply_at, l.last_reply_channel,
       l.last_reply_at is not null as replied,
       l.invalid_channels
  from public.leads l
  left join public.touch_runs t on t.lead_id = l.id
 group by l.id
""",
)

LEAD_WITH_CAMPAIGN: Final = View(
    schema="public",
    name="v_lead_with_enrichment_and_campaign_v1",
    sql="""
select e.*, n.campaign_id, c.campaign_key, c.name as campaign_name, c.is_active as campaign_is_active,
       n.next_action, n.next_action_at, n.priority_score
  from public.lead_enriched e
  join public.lead_next_action_view_v5 n on n.lead_id = e.lead_id
  left join public.campaigns c on c.id = n.campaign_id
""",
)

LEAD_VIEWS: Final = (LEAD_NEXT_ACTION, LEAD_ENRICHED, MULTICHANNEL_SIGNALS, LEAD_WITH_CAMPAIGN)
