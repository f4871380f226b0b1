//! Just enough of the Kafka wire protocol to read which topics a CreateTopics (api key 19) or
//! DeleteTopics (api key 20) request names, at every version up to the newest librdkafka and
//! Tansu speak (CreateTopics v0–7, DeleteTopics v0–6), from the request's frame (without its
//! length prefix). Anything else is not decoded; a version this file does not know is an error,
//! so the chaos test fails rather than miss a deletion.

pub const CREATE_TOPICS: i16 = 19;
pub const DELETE_TOPICS: i16 = 20;

/// The header of a request frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// What a decoded request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Topics {
    Create(Vec<String>),
    Delete(Vec<String>),
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {} (wanted {n})", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn uvarint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }
    /// A (nullable) string: int16 length, or with `compact` an unsigned varint length + 1.
    fn string(&mut self, compact: bool) -> Result<Option<String>, String> {
        let len: i64 = if compact {
            self.uvarint()? as i64 - 1
        } else {
            i64::from(self.i16()?)
        };
        if len < 0 {
            return Ok(None);
        }
        let raw = self.take(len as usize)?;
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|e| e.to_string())
    }
    /// An array's length: int32, or with `compact` an unsigned varint length + 1; null is 0.
    fn array(&mut self, compact: bool) -> Result<usize, String> {
        let len: i64 = if compact {
            self.uvarint()? as i64 - 1
        } else {
            i64::from(self.i32()?)
        };
        Ok(len.max(0) as usize)
    }
    fn tagged_fields(&mut self) -> Result<(), String> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }
}

/// The request header (v1, or v2 with tagged fields for flexible versions) and, for
/// CreateTopics and DeleteTopics, the topic names the body carries.
pub fn decode(frame: &[u8]) -> Result<(Header, Option<Topics>), String> {
    let mut r = Reader {
        bytes: frame,
        at: 0,
    };
    let header = Header {
        api_key: r.i16()?,
        api_version: r.i16()?,
        correlation_id: r.i32()?,
    };
    let flexible = match header.api_key {
        CREATE_TOPICS => header.api_version >= 5,
        DELETE_TOPICS => header.api_version >= 4,
        _ => return Ok((header, None)),
    };
    r.string(false)?; // client id: a plain nullable string even in header v2
    if flexible {
        r.tagged_fields()?;
    }
    let v = header.api_version;
    let topics = match header.api_key {
        CREATE_TOPICS if (0..=7).contains(&v) => Topics::Create(create_topics(&mut r, flexible)?),
        DELETE_TOPICS if (0..=6).contains(&v) => Topics::Delete(delete_topics(&mut r, v)?),
        key => return Err(format!("api key {key} version {v} is not decoded here")),
    };
    Ok((header, Some(topics)))
}

fn create_topics(r: &mut Reader, flexible: bool) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for _ in 0..r.array(flexible)? {
        names.push(r.string(flexible)?.ok_or("a null topic name")?);
        r.i32()?; // num_partitions
        r.i16()?; // replication_factor
        for _ in 0..r.array(flexible)? {
            r.i32()?; // partition_index
            for _ in 0..r.array(flexible)? {
                r.i32()?; // broker id
            }
            if flexible {
                r.tagged_fields()?;
            }
        }
        for _ in 0..r.array(flexible)? {
            r.string(flexible)?; // config name
            r.string(flexible)?; // value
            if flexible {
                r.tagged_fields()?;
            }
        }
        if flexible {
            r.tagged_fields()?;
        }
    }
    Ok(names)
}

fn delete_topics(r: &mut Reader, version: i16) -> Result<Vec<String>, String> {
    let flexible = version >= 4;
    let mut names = Vec::new();
    for _ in 0..r.array(flexible)? {
        if version >= 6 {
            // {name: compact nullable string, topic_id: uuid, tagged fields}
            let name = r.string(true)?;
            let id = r.take(16)?;
            r.tagged_fields()?;
            names.push(name.unwrap_or_else(|| format!("<topic id {}>", hex(id))));
        } else {
            names.push(r.string(flexible)?.ok_or("a null topic name")?);
        }
    }
    Ok(names)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(key: i16, version: i16, flexible: bool) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(key.to_be_bytes());
        b.extend(version.to_be_bytes());
        b.extend(7i32.to_be_bytes());
        b.extend(3i16.to_be_bytes());
        b.extend(b"rdk");
        if flexible {
            b.push(0);
        }
        b
    }

    fn compact(s: &str) -> Vec<u8> {
        let mut b = vec![(s.len() + 1) as u8];
        b.extend(s.as_bytes());
        b
    }

    #[test]
    fn delete_topics_v1_and_v4_and_v6() {
        let mut v1 = header(20, 1, false);
        v1.extend(2i32.to_be_bytes());
        for n in ["a", "bc"] {
            v1.extend((n.len() as i16).to_be_bytes());
            v1.extend(n.as_bytes());
        }
        v1.extend(1000i32.to_be_bytes());
        let names = |t| match t {
            Some(Topics::Delete(n)) => n,
            other => panic!("{other:?}"),
        };
        let (h, t) = decode(&v1).unwrap();
        assert_eq!((h.api_key, h.api_version, h.correlation_id), (20, 1, 7));
        assert_eq!(names(t), ["a", "bc"]);

        let mut v4 = header(20, 4, true);
        v4.push(3);
        v4.extend(compact("x"));
        v4.extend(compact("yz"));
        v4.extend(1000i32.to_be_bytes());
        v4.push(0);
        assert_eq!(names(decode(&v4).unwrap().1), ["x", "yz"]);

        let mut v6 = header(20, 6, true);
        v6.push(2);
        v6.extend(compact("orders"));
        v6.extend([0u8; 16]);
        v6.push(0);
        v6.extend(1000i32.to_be_bytes());
        v6.push(0);
        assert_eq!(names(decode(&v6).unwrap().1), ["orders"]);
    }

    #[test]
    fn create_topics_v4_and_v5_with_configs() {
        let mut v4 = header(19, 4, false);
        v4.extend(1i32.to_be_bytes());
        v4.extend(2i16.to_be_bytes());
        v4.extend(b"ab");
        v4.extend(3i32.to_be_bytes());
        v4.extend(1i16.to_be_bytes());
        v4.extend(0i32.to_be_bytes()); // no assignments
        v4.extend(1i32.to_be_bytes()); // one config
        v4.extend(2i16.to_be_bytes());
        v4.extend(b"k1");
        v4.extend((-1i16).to_be_bytes());
        v4.extend(1000i32.to_be_bytes());
        v4.push(0);
        assert_eq!(
            decode(&v4).unwrap().1,
            Some(Topics::Create(vec!["ab".into()]))
        );

        let mut v5 = header(19, 5, true);
        v5.push(3);
        for n in ["t1", "t2"] {
            v5.extend(compact(n));
            v5.extend(1i32.to_be_bytes());
            v5.extend((-1i16).to_be_bytes());
            v5.push(2); // one assignment
            v5.extend(0i32.to_be_bytes());
            v5.push(2);
            v5.extend(1i32.to_be_bytes());
            v5.push(0);
            v5.push(2); // one config
            v5.extend(compact("retention.ms"));
            v5.extend(compact("1000"));
            v5.push(0);
            v5.push(0);
        }
        v5.extend(1000i32.to_be_bytes());
        v5.push(0);
        v5.push(0);
        assert_eq!(
            decode(&v5).unwrap().1,
            Some(Topics::Create(vec!["t1".into(), "t2".into()]))
        );
    }

    #[test]
    fn other_requests_are_not_decoded_and_unknown_versions_refused() {
        let (h, t) = decode(&header(3, 12, true)).unwrap();
        assert_eq!((h.api_key, t), (3, None));
        assert!(decode(&header(20, 9, true)).is_err());
        assert!(decode(&header(20, 1, false)[..5]).is_err());
    }
}
