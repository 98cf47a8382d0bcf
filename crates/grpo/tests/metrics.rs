//! JSONL metrics and the hand-written TensorBoard event file: CRC test vectors, exact bytes of
//! a small record, and a write → read round trip.

use std::collections::BTreeMap;

use mixed_r1_grpo::metrics::{
    crc32c, masked_crc32c, read_events, read_jsonl, series, tfrecord, Event, JsonlWriter,
    MetricsLogger, TbWriter,
};

#[test]
fn crc32c_test_vectors() {
    // RFC 3720 B.4 / the standard check value.
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    assert_eq!(crc32c(b""), 0);
    // mask = ((c >> 15) | (c << 17)) + 0xa282ead8 with c = 0xE3069283:
    // rotated 0x2507C60D, plus 0xA282EAD8 = 0xC78AB0E5 (mod 2^32).
    assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
}

#[test]
fn event_protobuf_bytes() {
    let ev = Event {
        wall_time: 1.5,
        step: 300,
        file_version: None,
        scalars: vec![("a".into(), 2.0)],
    };
    let bytes = ev.encode();
    let mut want = vec![0x09];
    want.extend_from_slice(&1.5f64.to_le_bytes()); // field 1, fixed64
    want.extend_from_slice(&[0x10, 0xAC, 0x02]); // field 2, varint 300
                                                 // field 5 (summary) len 10 { field 1 (value) len 8 { tag "a", simple_value 2.0 } }
    want.extend_from_slice(&[0x2A, 10, 0x0A, 8, 0x0A, 1, b'a', 0x15]);
    want.extend_from_slice(&2.0f32.to_le_bytes());
    assert_eq!(bytes, want);
    assert_eq!(Event::decode(&bytes).unwrap(), ev);
    let rec = tfrecord(&bytes);
    assert_eq!(&rec[..8], &(bytes.len() as u64).to_le_bytes());
    assert_eq!(rec.len(), bytes.len() + 16);
}

#[test]
fn tensorboard_round_trip_and_crc_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TbWriter::create(dir.path()).unwrap();
    let name = w.path().file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    for step in 1..=3u64 {
        let mut m = BTreeMap::new();
        m.insert("reward/mcq".to_string(), step as f64 * 0.25);
        m.insert("loss".to_string(), -(step as f64));
        m.insert("nan_is_dropped".to_string(), f64::NAN);
        w.log(step, &m).unwrap();
    }
    w.add_scalar("lr", 1e-6, 3).unwrap();
    let path = w.path().to_path_buf();
    drop(w);

    let evs = read_events(&path).unwrap();
    assert_eq!(evs.len(), 5);
    assert_eq!(evs[0].file_version.as_deref(), Some("brain.Event:2"));
    assert!(evs[0].scalars.is_empty());
    assert!(evs[0].wall_time > 1.6e9);
    for (i, ev) in evs[1..4].iter().enumerate() {
        let step = i as i64 + 1;
        assert_eq!(ev.step, step);
        assert_eq!(
            ev.scalars,
            vec![
                ("loss".to_string(), -(step as f32)),
                ("reward/mcq".to_string(), step as f32 * 0.25)
            ]
        );
    }
    assert_eq!(evs[4].scalars, vec![("lr".to_string(), 1e-6f32)]);

    // A flipped payload byte fails the payload CRC; a flipped length byte the length CRC.
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 6] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let e = read_events(&path).unwrap_err();
    assert!(e.to_string().contains("payload CRC"), "{e}");
    bytes[n - 6] ^= 0x40;
    bytes[0] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let e = read_events(&path).unwrap_err();
    assert!(e.to_string().contains("length CRC"), "{e}");
}

#[test]
fn jsonl_log_resume_and_series() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    let mut w = JsonlWriter::create(&path).unwrap();
    for step in 1..=5u64 {
        let mut m = BTreeMap::new();
        m.insert("reward/mcq".to_string(), step as f64 / 10.0);
        if step == 3 {
            m.insert("bad".to_string(), f64::INFINITY);
        }
        w.log(step, &m).unwrap();
    }
    drop(w);
    let recs = read_jsonl(&path).unwrap();
    assert_eq!(recs.len(), 5);
    assert!(recs[2]["bad"].is_null(), "non-finite -> null");
    assert_eq!(
        series(&recs, "reward/mcq"),
        vec![(1.0, 0.1), (2.0, 0.2), (3.0, 0.3), (4.0, 0.4), (5.0, 0.5)]
    );
    // Resuming from a checkpoint at step 3 drops steps 4 and 5 written after it.
    let mut w = JsonlWriter::resume(&path, Some(3)).unwrap();
    let mut m = BTreeMap::new();
    m.insert("reward/mcq".to_string(), 0.9);
    w.log(4, &m).unwrap();
    let recs = read_jsonl(&path).unwrap();
    assert_eq!(series(&recs, "reward/mcq").last(), Some(&(4.0, 0.9)));
    assert_eq!(recs.len(), 4);
}

#[test]
fn logger_writes_both() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = MetricsLogger::open(dir.path(), None, true).unwrap();
    let mut m = BTreeMap::new();
    m.insert("loss".to_string(), 0.5);
    log.log(1, &m).unwrap();
    let tb = log.tb.as_ref().unwrap().path().to_path_buf();
    drop(log);
    assert_eq!(
        read_jsonl(&dir.path().join("metrics.jsonl")).unwrap().len(),
        1
    );
    assert_eq!(read_events(&tb).unwrap().len(), 2);
}
