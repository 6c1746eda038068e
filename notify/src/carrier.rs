//! The carrier's trouble report (incidents → notifications → **carrier wording** → e-mail): what
//! a carrier's NOC reads when Faultline reports a fault on its circuit. Bilingual (Simplified
//! Chinese first, then English: the NOCs of this field's carriers work in Chinese), written from
//! the notification's [`CarrierReport`](faultline_incidents::ticket::CarrierReport) only: the
//! circuit, both ends, when the fault started, our ticket number and the evidence that our side
//! is up. The subject carries `[FL-<ticket>]` so the NOC's reply threads back into the ticket,
//! and asks for the carrier's own trouble-ticket number.

/// Subject of the trouble report.
pub const SUBJECT: &str = "[FL-{{ ticket_id }}] 线路故障报障 Circuit fault report: \
{{ carrier.circuit_id }} ({{ carrier.carrier }})";

/// Body of the trouble report.
pub const BODY: &str = "\
{{ carrier.carrier }} 网络运营中心：

我方监测到贵司线路故障，请协助尽快处理。
线路编号：{{ carrier.circuit_id }}
我方端口（A 端）：{{ carrier.a_end }}
{%- if carrier.z_end %}
贵司交接点（Z 端）：{{ carrier.z_end }}{% endif %}
故障开始时间：{{ started_at }}
我方工单号：FL-{{ ticket_id }}
回复时请保留标题中的 [FL-{{ ticket_id }}]，并告知贵司工单号。

判断依据（我方一侧正常）：
{% for line in carrier.evidence %}- {{ line }}
{% endfor %}
----
To the {{ carrier.carrier }} NOC:

We see a fault on your circuit and ask you to clear it.
Circuit id:     {{ carrier.circuit_id }}
Our end (A):    {{ carrier.a_end }}
{%- if carrier.z_end %}
Your hand-off:  {{ carrier.z_end }}{% endif %}
Fault started:  {{ started_at }}
Our ticket:     FL-{{ ticket_id }}
Please keep [FL-{{ ticket_id }}] in the subject when you reply, and tell us your
trouble-ticket number.

Evidence that our side is up:
{% for line in carrier.evidence %}- {{ line }}
{% endfor %}
Faultline service desk
";
