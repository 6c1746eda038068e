//! A synthetic SNMPv2c agent serving a large IF-MIB (N interfaces) from memory, for the
//! "very large device" walk: no real peer here can hold 20,000 interfaces (snmpd shows the
//! host's few, snmpsim serves a few thousand OIDs per second). GET, GETNEXT and GETBULK with
//! real BER encoding; responses are capped near the UDP limit like real agents.

use faultline_snmp::Oid;

#[derive(Clone)]
enum V {
    Int(i64),
    Str(String),
    ObjId(Vec<u32>),
    Counter32(u32),
    Gauge32(u32),
    Ticks(u32),
    Counter64(u64),
}

pub struct Mib(Vec<(Vec<u32>, V)>);

impl Mib {
    pub fn interfaces(n: u32) -> Mib {
        let mut rows = vec![
            (
                vec![1, 3, 6, 1, 2, 1, 1, 2, 0],
                V::ObjId(vec![1, 3, 6, 1, 4, 1, 99999]),
            ),
            (vec![1, 3, 6, 1, 2, 1, 1, 3, 0], V::Ticks(12_345)),
        ];
        let if_entry = [1, 3, 6, 1, 2, 1, 2, 2, 1];
        let ifx_entry = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1];
        let col = |base: &[u32], c: u32, i: u32| [base, &[c, i]].concat();
        for i in 1..=n {
            rows.push((col(&if_entry, 2, i), V::Str(format!("port {i}"))));
            rows.push((col(&if_entry, 7, i), V::Int(1)));
            rows.push((
                col(&if_entry, 8, i),
                V::Int(if i % 10 == 0 { 2 } else { 1 }),
            ));
            for c in [13, 14, 19, 20] {
                rows.push((col(&if_entry, c, i), V::Counter32(i)));
            }
            rows.push((
                col(&ifx_entry, 1, i),
                V::Str(format!("Gi{}/{}", i / 48, i % 48)),
            ));
            for c in [6, 7, 10, 11] {
                rows.push((col(&ifx_entry, c, i), V::Counter64(u64::from(i) << 33)));
            }
            rows.push((col(&ifx_entry, 15, i), V::Gauge32(10_000)));
            rows.push((col(&ifx_entry, 18, i), V::Str(format!("customer {i}"))));
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Mib(rows)
    }

    fn next_after(&self, oid: &[u32]) -> Option<&(Vec<u32>, V)> {
        let at = self.0.partition_point(|(o, _)| o.as_slice() <= oid);
        self.0.get(at)
    }

    fn exact(&self, oid: &[u32]) -> Option<&V> {
        self.0
            .binary_search_by(|(o, _)| o.as_slice().cmp(oid))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Answers one request datagram; `None` for what it cannot parse.
    pub fn answer(&self, request: &[u8]) -> Option<Vec<u8>> {
        let pdu = snmp2::Pdu::from_bytes(request).ok()?;
        let oids: Vec<Vec<u32>> = pdu
            .varbinds
            .clone()
            .map(|(o, _)| Oid::from_snmp2(&o).map(|o| o.arcs().to_vec()))
            .collect::<Option<_>>()?;
        let end_of_mib = |oid: &[u32]| varbind(oid, &tlv(0x82, &[]));
        let mut body = Vec::new();
        match pdu.message_type {
            snmp2::MessageType::GetRequest => {
                for oid in &oids {
                    body.extend(match self.exact(oid) {
                        Some(v) => varbind(oid, &encode(v)),
                        None => varbind(oid, &tlv(0x81, &[])),
                    });
                }
            }
            snmp2::MessageType::GetNextRequest => {
                for oid in &oids {
                    body.extend(match self.next_after(oid) {
                        Some((o, v)) => varbind(o, &encode(v)),
                        None => end_of_mib(oid),
                    });
                }
            }
            snmp2::MessageType::GetBulkRequest => {
                let mut cursors = oids.clone();
                'reps: for _ in 0..pdu.error_index.max(1) {
                    for cursor in &mut cursors {
                        let vb = match self.next_after(cursor) {
                            Some((o, v)) => {
                                *cursor = o.clone();
                                varbind(o, &encode(v))
                            }
                            None => end_of_mib(cursor),
                        };
                        if body.len() + vb.len() > 60_000 {
                            break 'reps;
                        }
                        body.extend(vb);
                    }
                }
            }
            _ => return None,
        }
        let inner = [int(i64::from(pdu.req_id)), int(0), int(0), tlv(0x30, &body)].concat();
        Some(tlv(
            0x30,
            &[int(1), tlv(0x04, pdu.community), tlv(0xa2, &inner)].concat(),
        ))
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let n = content.len();
    let mut out = vec![tag];
    match n {
        0..=127 => out.push(n as u8),
        128..=255 => out.extend([0x81, n as u8]),
        _ => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn int(n: i64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let mut start = 0;
    while start < 7
        && ((bytes[start] == 0 && bytes[start + 1] < 0x80)
            || (bytes[start] == 0xff && bytes[start + 1] >= 0x80))
    {
        start += 1;
    }
    tlv(0x02, &bytes[start..])
}

fn unsigned(tag: u8, n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(7);
    let mut content = Vec::new();
    if bytes[start] >= 0x80 {
        content.push(0);
    }
    content.extend_from_slice(&bytes[start..]);
    tlv(tag, &content)
}

fn oid(arcs: &[u32]) -> Vec<u8> {
    let mut content = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut chunk = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            chunk.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        content.extend(chunk.iter().rev());
    }
    tlv(0x06, &content)
}

fn encode(v: &V) -> Vec<u8> {
    match v {
        V::Int(n) => int(*n),
        V::Str(s) => tlv(0x04, s.as_bytes()),
        V::ObjId(arcs) => oid(arcs),
        V::Counter32(n) => unsigned(0x41, u64::from(*n)),
        V::Gauge32(n) => unsigned(0x42, u64::from(*n)),
        V::Ticks(n) => unsigned(0x43, u64::from(*n)),
        V::Counter64(n) => unsigned(0x46, *n),
    }
}

fn varbind(name: &[u32], value: &[u8]) -> Vec<u8> {
    tlv(0x30, &[oid(name), value.to_vec()].concat())
}

/// Serves `mib` on a fresh 127.0.0.1 port until the task is aborted.
pub async fn serve(mib: Mib) -> (String, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if let Some(reply) = mib.answer(&buf[..n]) {
                let _ = socket.send_to(&reply, from).await;
            }
        }
    });
    (address, task)
}
