//! MQTT against a real mosquitto: Home Assistant discovery and states arrive with the right
//! topics, units and classes; corrupted indexes never arrive; a broker restart is survived.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use integrations::{MqttConfig, Outputs, OutputsConfig, Reading};
use meter_sim::{Contract, Mode};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

type Seen = Arc<Mutex<HashMap<String, Vec<Vec<u8>>>>>;

fn mosquitto(dir: &std::path::Path, port: u16) -> Option<Proc> {
    let bin = server_binary("mosquitto", "mosquitto")?;
    let conf = dir.join("mosquitto.conf");
    // No persistence: a restart loses every retained message, the worst case for discovery.
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .unwrap();
    let p = Proc::spawn(
        &bin,
        &["-c".into(), conf.display().to_string()],
        dir.join("mosquitto.log"),
    );
    wait_port(port, Duration::from_secs(10));
    Some(p)
}

/// A subscriber that records every message by topic, resubscribing after reconnections.
fn subscriber(port: u16, seen: Seen) {
    let mut o = MqttOptions::new("test-sub", "127.0.0.1", port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, 100);
    tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client
                        .subscribe("homeassistant/#", QoS::AtLeastOnce)
                        .await
                        .unwrap();
                    client.subscribe("tt/#", QoS::AtLeastOnce).await.unwrap();
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    seen.lock()
                        .unwrap()
                        .entry(p.topic.clone())
                        .or_default()
                        .push(p.payload.to_vec());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
}

fn last(seen: &Seen, topic: &str) -> Option<String> {
    seen.lock()
        .unwrap()
        .get(topic)
        .and_then(|v| v.last())
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

async fn wait_for(seen: &Seen, topic: &str, want: Option<&str>, within: Duration) -> String {
    let end = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = last(seen, topic) {
            if want.is_none_or(|w| w == v) {
                return v;
            }
        }
        if tokio::time::Instant::now() > end {
            panic!(
                "{topic}: wanted {want:?}, last seen {:?}",
                last(seen, topic)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last discovery config for one entity, waiting for it: each meter's discovery goes out
/// on its own schedule, so one meter's states arriving says nothing about another's configs.
async fn config(seen: &Seen, meter: &str, object: &str, component: &str) -> Value {
    let t = format!("homeassistant/{component}/teleinfo_{meter}/{object}/config");
    let doc = wait_for(seen, &t, None, Duration::from_secs(10)).await;
    serde_json::from_str(&doc).unwrap_or_else(|e| panic!("discovery on {t} is not JSON: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_states_and_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some(mut broker) = mosquitto(dir.path(), port) else {
        return;
    };
    let seen: Seen = Arc::default();
    subscriber(port, seen.clone());

    let cfg = OutputsConfig {
        mqtt: Some(MqttConfig {
            topic_prefix: "tt".into(),
            publish_interval_s: 0.2,
            ..MqttConfig::new(&format!("mqtt://127.0.0.1:{port}"))
        }),
        forward: vec![],
    };
    let out = Outputs::start(&cfg, dir.path()).unwrap();
    let start = now_s() - 600;
    let mut tempo = simulator(7, Mode::Standard, Contract::Tempo, start, 2000);
    let mut hist = simulator(8, Mode::Historic, Contract::default_hchp(), start, 2000);
    let mut readings: Vec<Reading> = Vec::new();
    let mut hts = start * 1000;
    for _ in 0..3 {
        readings.push(next_reading(&mut tempo, 0));
        hts += 2000;
        readings.push(next_reading(&mut hist, hts));
    }
    let std_meter = readings[0].meter.clone();
    let hist_meter = readings[1].meter.clone();
    let last_east = readings[4].value("EAST").unwrap();
    out.submit(readings.clone()).unwrap();

    // States: the index as the meter sent it, on its own topic and in the JSON document.
    let east = wait_for(
        &seen,
        &format!("tt/{std_meter}/EAST"),
        Some(&format!("{}", last_east as i64)),
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(east.parse::<f64>().unwrap(), last_east);
    let doc: Value = serde_json::from_str(
        &wait_for(
            &seen,
            &format!("tt/{std_meter}/state"),
            None,
            Duration::from_secs(5),
        )
        .await,
    )
    .unwrap();
    assert_eq!(doc["EAST"].as_f64(), Some(last_east));
    assert_eq!(
        wait_for(&seen, "tt/status", Some("online"), Duration::from_secs(5)).await,
        "online"
    );
    wait_for(
        &seen,
        &format!("tt/{std_meter}/availability"),
        Some("online"),
        Duration::from_secs(5),
    )
    .await;

    // Discovery: one device per meter, energy for the Energy dashboard, VA as apparent power.
    let c = config(&seen, &std_meter, "east", "sensor").await;
    assert_eq!(c["device_class"], "energy");
    assert_eq!(c["state_class"], "total_increasing");
    assert_eq!(c["unit_of_measurement"], "Wh");
    assert_eq!(c["state_topic"], format!("tt/{std_meter}/EAST"));
    assert_eq!(c["unique_id"], format!("teleinfo_{std_meter}_east"));
    assert_eq!(
        c["device"]["identifiers"][0],
        format!("teleinfo_{std_meter}")
    );
    assert_eq!(c["availability_mode"], "all");
    let s = config(&seen, &std_meter, "sinsts", "sensor").await;
    assert_eq!(
        (
            s["device_class"].as_str(),
            s["unit_of_measurement"].as_str(),
            s["state_class"].as_str()
        ),
        (Some("apparent_power"), Some("VA"), Some("measurement"))
    );
    let t = config(&seen, &std_meter, "tempo_today", "sensor").await;
    assert_eq!(t["device_class"], "enum");
    assert!(t["options"]
        .as_array()
        .unwrap()
        .contains(&Value::from("blue")));
    let today = wait_for(
        &seen,
        &format!("tt/{std_meter}/tempo_today"),
        None,
        Duration::from_secs(5),
    )
    .await;
    assert!(
        ["blue", "white", "red"].contains(&today.as_str()),
        "{today}"
    );
    let b = config(&seen, &std_meter, "stge_overvoltage", "binary_sensor").await;
    assert_eq!(b["device_class"], "problem");
    wait_for(
        &seen,
        &format!("tt/{std_meter}/stge/overvoltage"),
        Some("OFF"),
        Duration::from_secs(5),
    )
    .await;
    // Labels with + and -: topic-safe names, valid object ids.
    let nj = config(&seen, &std_meter, "njourf_next", "sensor").await;
    assert_eq!(nj["state_topic"], format!("tt/{std_meter}/NJOURF_next"));
    wait_for(
        &seen,
        &format!("tt/{std_meter}/NJOURF_next"),
        None,
        Duration::from_secs(5),
    )
    .await;
    // Historic meter: its indexes, PAPP and the tariff period.
    let h = config(&seen, &hist_meter, "hchc", "sensor").await;
    assert_eq!(h["device_class"], "energy");
    assert_eq!(
        config(&seen, &hist_meter, "papp", "sensor").await["device_class"],
        "apparent_power"
    );
    let period = wait_for(
        &seen,
        &format!("tt/{hist_meter}/tariff_period"),
        None,
        Duration::from_secs(5),
    )
    .await;
    assert!(period == "HC" || period == "HP", "{period}");
    for topic in seen.lock().unwrap().keys() {
        assert!(!topic.contains('+') && !topic.contains('#'), "{topic}");
    }

    // A corrupted index (a dropped digit) never reaches the broker; the next good one does.
    let mut bad = next_reading(&mut tempo, 0);
    let good_value = bad.value("EAST").unwrap();
    for (info, v) in bad.values.iter_mut() {
        if info.label == "EAST" {
            *v = (*v / 10.0).floor();
        }
    }
    let bad_value = bad.value("EAST").unwrap();
    out.submit(vec![bad]).unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while out.plausibility().implausible == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the corrupted index is counted as implausible");
    // One more publish period: had it been published, the subscriber would see it below.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(out.plausibility().implausible, 1);
    let good = next_reading(&mut tempo, 0);
    let good_east = good.value("EAST").unwrap();
    assert!(good_east >= good_value);
    out.submit(vec![good]).unwrap();
    wait_for(
        &seen,
        &format!("tt/{std_meter}/EAST"),
        Some(&format!("{}", good_east as i64)),
        Duration::from_secs(5),
    )
    .await;
    let all = seen
        .lock()
        .unwrap()
        .get(&format!("tt/{std_meter}/EAST"))
        .cloned()
        .unwrap();
    assert!(
        !all.iter()
            .any(|p| p == format!("{}", bad_value as i64).as_bytes()),
        "corrupted index published"
    );

    // Home Assistant restarts: its birth message brings every discovery config again.
    let before = out
        .mqtt()
        .unwrap()
        .stats()
        .discovery_published
        .load(std::sync::atomic::Ordering::Relaxed);
    let (pc, mut pel) = AsyncClient::new(MqttOptions::new("ha", "127.0.0.1", port), 10);
    pc.publish("homeassistant/status", QoS::AtLeastOnce, false, "online")
        .await
        .unwrap();
    for _ in 0..6 {
        let _ = tokio::time::timeout(Duration::from_millis(300), pel.poll()).await;
    }
    let stats = out.mqtt().unwrap().stats().clone();
    let after = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = stats
                .discovery_published
                .load(std::sync::atomic::Ordering::Relaxed);
            if n >= before * 2 {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("discovery published again after homeassistant/status online");
    assert!(after >= before * 2);

    // Broker restart (no persistence: retained discovery is gone): publishing resumes by
    // itself, discovery included.
    broker.stop();
    seen.lock().unwrap().clear();
    let during = next_reading(&mut tempo, 0);
    out.submit(vec![during]).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.start();
    wait_port(port, Duration::from_secs(10));
    let fresh = next_reading(&mut tempo, 0);
    let fresh_east = fresh.value("EAST").unwrap();
    out.submit(vec![fresh]).unwrap();
    wait_for(
        &seen,
        &format!("tt/{std_meter}/EAST"),
        Some(&format!("{}", fresh_east as i64)),
        Duration::from_secs(40),
    )
    .await;
    wait_for(&seen, "tt/status", Some("online"), Duration::from_secs(5)).await;
    assert_eq!(
        config(&seen, &std_meter, "east", "sensor").await["device_class"],
        "energy"
    );
    let s = out.mqtt().unwrap().stats();
    assert!(s.connections.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    assert!(
        s.connection_errors
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    // A clean stop says offline (retained) at once.
    out.shutdown().await;
    wait_for(&seen, "tt/status", Some("offline"), Duration::from_secs(5)).await;
}
