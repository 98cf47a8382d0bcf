//! The reward server as clients see it: a real server on 127.0.0.1, real HTTP clients (hyper for
//! well-formed requests, raw TCP for broken ones), real rewards checked against the library.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use mixed_r1_reward::{RewardConfig, Scorer, ScoringSample};
use mixed_r1_server::{serve, ServerConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    async fn start(config: ServerConfig) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scorer = Arc::new(Scorer::new(RewardConfig::default()).unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve(listener, scorer, config, async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            stop: Some(tx),
            handle,
        }
    }

    /// Sends the shutdown signal and waits for `serve` to return.
    async fn shut_down(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
    }
}

/// One request over a fresh hyper HTTP/1.1 connection.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> (StatusCode, Value) {
    let (status, bytes) = request(addr, "POST", path, serde_json::to_vec(body).unwrap()).await;
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn post_raw(addr: SocketAddr, path: &str, body: &[u8]) -> (StatusCode, Value) {
    let (status, bytes) = request(addr, "POST", path, body.to_vec()).await;
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn metrics(addr: SocketAddr) -> String {
    let (status, bytes) = request(addr, "GET", "/metrics", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(bytes).unwrap()
}

/// The value of one series in the metrics text, 0 when absent.
fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0)
}

/// Writes `bytes` on a raw connection, then reads whatever comes back until the server closes
/// or a whole response with a body has arrived.
async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    read_response(&mut s).await
}

async fn read_response(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => 0,
            Err(_) => panic!("no response within 10 s: {}", String::from_utf8_lossy(&buf)),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            });
            if len.is_some_and(|len| body.len() >= len) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn status_of(raw: &str) -> u16 {
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn body_of(raw: &str) -> Value {
    serde_json::from_str(raw.split_once("\r\n\r\n").unwrap().1).unwrap()
}

const SYSTEM: &str = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";

/// A Qwen2.5-VL-style OpenRLHF item: (query, prompt, label, the sample our library would score).
fn item(i: usize) -> (String, String, Value, ScoringSample) {
    let (question, label, answer) = match i % 6 {
        0 => (
            "Is the cup red?",
            json!({"task": "yes_no", "answer": "yes"}),
            if i % 4 == 0 { "Yes" } else { "no" },
        ),
        1 => (
            "Which animal is shown? (A) cat (B) dog",
            json!({"task": "mcq", "answer": "B", "choices": ["cat", "dog"]}),
            if i % 3 == 0 { "(B)" } else { "A" },
        ),
        2 => (
            "How many apples?",
            json!({"task": "numeric", "answer": "1,250"}),
            "1250 apples",
        ),
        3 => (
            "What is the value in 2019?",
            json!({"task": "chart", "answer": "23.5"}),
            "24.1",
        ),
        4 => (
            "Locate the red cup.",
            json!({"task": "grounding", "answer": [[10, 20, 110, 220]], "frame": "abs", "image_size": [640, 480]}),
            "{\"bbox_2d\": [12, 18, 108, 230]}",
        ),
        // Its gold is not a box: skipped, never scored as correct.
        _ => (
            "Locate the dog.",
            json!({"task": "grounding", "answer": "somewhere", "image_size": [640, 480]}),
            "[1, 2, 3, 4]",
        ),
    };
    let prompt = format!(
        "{SYSTEM}<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n"
    );
    let response = format!("<think>I look at the image {i}.</think>\n<answer>{answer}</answer>");
    // Odd items: the processor expanded the image pads (as OpenRLHF 0.11 decodes them), which
    // the prompt still matches up to pad runs.
    let query_prompt = if i % 2 == 1 {
        prompt.replace("<|image_pad|>", &"<|image_pad|>".repeat(16))
    } else {
        prompt.clone()
    };
    let query = format!("{query_prompt}{response}<|im_end|>");
    // Every fourth: the prompt as sent differs from the decoded one (white space changed), so the
    // response is found after the template's assistant marker.
    let sent_prompt = if i % 4 == 3 {
        format!("{prompt} ")
    } else {
        prompt
    };
    let mut fields = label.as_object().unwrap().clone();
    fields.insert("response".into(), json!(response));
    let sample: ScoringSample = serde_json::from_value(Value::Object(fields)).unwrap();
    // Labels travel as JSON strings, as a dataset column would hold them.
    (query, sent_prompt, json!(label.to_string()), sample)
}

fn openrlhf_batch(start: usize, n: usize) -> (Value, Vec<Option<f64>>) {
    let scorer = Scorer::new(RewardConfig::default()).unwrap();
    let items: Vec<_> = (start..start + n).map(item).collect();
    let expected = items
        .iter()
        .map(|(_, _, _, s)| scorer.score(s).reward)
        .collect();
    let body = json!({
        "query": items.iter().map(|x| x.0.clone()).collect::<Vec<_>>(),
        "prompts": items.iter().map(|x| x.1.clone()).collect::<Vec<_>>(),
        "labels": items.iter().map(|x| x.2.clone()).collect::<Vec<_>>(),
    });
    (body, expected)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn small_limits() -> ServerConfig {
    ServerConfig {
        max_body_bytes: 64 << 10,
        max_batch: 100,
        ..ServerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn openrlhf_protocol_round_trip() {
    let server = TestServer::start(ServerConfig::default()).await;
    let (body, expected) = openrlhf_batch(0, 12);
    let (status, resp) = post_json(server.addr, "/get_reward", &body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let rewards = floats(&resp["rewards"]);
    assert_eq!(rewards.len(), 12);
    for (i, (got, want)) in rewards.iter().zip(&expected).enumerate() {
        assert_eq!(*got, want.unwrap_or(0.0), "item {i}");
    }
    // Values by hand: a correct, well-formed yes/no is 1.0 + 0.5; a wrong one 0.5 (format only).
    assert_eq!(rewards[0], 1.5);
    assert_eq!(rewards[6], 0.5);
    assert_eq!(rewards[2], 1.5); // "1250 apples" == "1,250"
    assert_eq!(rewards[3], 1.5); // chart: 24.1 is within 5% of 23.5
    let scores = floats(&resp["scores"]);
    let skipped = floats(&resp["extra_logs"]["skipped"]);
    // Item 5 and 11: the gold is not a box, so skipped: reward 0.0, flagged.
    assert_eq!((rewards[5], scores[5], skipped[5]), (0.0, 0.0, 1.0));
    assert_eq!(skipped.iter().sum::<f64>(), 2.0);
    assert!(expected[5].is_none());
    // The grounding box overlaps the gold: IoU between 0 and 1.
    assert!(scores[4] > 0.8 && scores[4] < 1.0, "{}", scores[4]);
    assert_eq!(floats(&resp["extra_logs"]["format"]), vec![1.0; 12]);
    let m = metrics(server.addr).await;
    assert_eq!(
        series(
            &m,
            "mixed_r1_samples_total{task=\"grounding\",outcome=\"skipped\"}"
        ),
        2.0
    );
    assert_eq!(
        series(
            &m,
            "mixed_r1_samples_total{task=\"yes_no\",outcome=\"scored\"}"
        ),
        2.0
    );
    assert_eq!(
        series(
            &m,
            "mixed_r1_openrlhf_extraction_total{method=\"prompt_prefix\"}"
        ),
        9.0
    );
    assert_eq!(
        series(
            &m,
            "mixed_r1_openrlhf_extraction_total{method=\"template\"}"
        ),
        3.0
    );
    assert_eq!(
        series(
            &m,
            "mixed_r1_http_requests_total{endpoint=\"/get_reward\",status=\"200\"}"
        ),
        1.0
    );
    // An empty shard (OpenRLHF splits a batch across servers) is an empty answer.
    let (status, resp) = post_json(
        server.addr,
        "/get_reward",
        &json!({"query": [], "prompts": [], "labels": []}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resp["rewards"], json!([]));
    server.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plain_labels_use_the_default_task() {
    let server = TestServer::start(ServerConfig {
        default_task: Some("mcq".into()),
        ..ServerConfig::default()
    })
    .await;
    let body = json!({
        "query": ["<|im_start|>assistant\n<think>.</think><answer>(C)</answer><|im_end|>",
                  "<|im_start|>assistant\n<think>.</think><answer>yes</answer><|im_end|>"],
        "prompts": ["p", "p"],
        "labels": ["C", "{\"task\": \"yes_no\", \"answer\": \"no\"}"],
    });
    let (status, resp) = post_json(server.addr, "/get_reward", &body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(floats(&resp["rewards"]), vec![1.5, 0.5]);
    assert_eq!(floats(&resp["scores"]), vec![1.0, 0.0]);
    server.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn score_endpoint_gives_per_sample_errors_in_order() {
    let server = TestServer::start(ServerConfig::default()).await;
    let body = json!([
        {"id": "a", "task": "yes_no", "answer": "yes", "response": "<think>.</think><answer>Yes</answer>"},
        {"id": "b", "task": "mcq", "answer": "B", "choices": "cat", "response": "<answer>B</answer>"},
        {"id": "c", "task": "chart", "answer": "0.35", "response": "<think>.</think><answer>35%</answer>"},
        {"id": "d", "task": "grounding", "answer": "nowhere", "response": "<answer>[1,2,3,4]</answer>"},
        {"id": "e", "answer": "B", "response": ""},
        7,
    ]);
    let (status, resp) = post_json(server.addr, "/score", &body).await;
    assert_eq!(status, StatusCode::OK);
    let r = resp.as_array().unwrap();
    assert_eq!(r.len(), 6);
    assert_eq!(
        (r[0]["id"].clone(), r[0]["reward"].clone()),
        (json!("a"), json!(1.5))
    );
    assert_eq!(r[1]["id"], "b");
    assert!(r[1]["reward"].is_null());
    assert!(
        r[1]["error"]
            .as_str()
            .unwrap()
            .contains("[1].choices: invalid type"),
        "{}",
        r[1]
    );
    assert_eq!(r[2]["reward"], 1.5);
    assert!(
        r[3]["reward"].is_null() && r[3]["format"] == 0.0,
        "{}",
        r[3]
    );
    assert!(r[4]["error"].as_str().unwrap().contains("task"), "{}", r[4]);
    assert!(
        r[5]["error"]
            .as_str()
            .unwrap()
            .starts_with("bad sample: [5]: invalid type: integer `7`"),
        "{}",
        r[5]
    );
    // Not an array: the request fails as a whole.
    let (status, resp) = post_json(server.addr, "/score", &json!({"task": "mcq"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        resp["error"]
            .as_str()
            .unwrap()
            .contains("must be a JSON array"),
        "{resp}"
    );
    server.shut_down().await;
}

/// OpenRLHF 0.11 decodes the whole observation with special tokens kept: the query of a
/// vision rollout holds every expanded image pad, and a policy may sample pads itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queries_full_of_image_pads_are_cut_and_scored() {
    let server = TestServer::start(ServerConfig::default()).await;
    let prompt = format!(
        "{SYSTEM}<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Where is the cup?<|im_end|>\n<|im_start|>assistant\n"
    );
    let label =
        json!({"task": "grounding", "answer": [[10, 20, 110, 220]], "image_size": [640, 480]});
    let mut queries = Vec::new();
    for (pads, sampled) in [(1usize, 0usize), (4_096, 0), (50_000, 0), (4_096, 300)] {
        let expanded = prompt.replace("<|image_pad|>", &"<|image_pad|>".repeat(pads));
        // Pads the policy sampled inside its own answer are not part of the answer.
        let response = format!(
            "<think>left</think><answer>[10, 20, {}110, 220]</answer>",
            "<|image_pad|>".repeat(sampled)
        );
        queries.push(format!("{expanded}{response}<|im_end|>"));
    }
    let n = queries.len();
    let body = json!({"query": queries, "prompts": vec![prompt.clone(); n], "labels": vec![label.clone(); n]});
    let (status, resp) = post_json(server.addr, "/get_reward", &body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(floats(&resp["rewards"]), vec![1.5; n]);
    // Without prompts: the assistant marker after the pads.
    let body = json!({"query": body["query"], "labels": vec![label; n]});
    let (status, resp) = post_json(server.addr, "/get_reward", &body).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(floats(&resp["rewards"]), vec![1.5; n]);
    let m = metrics(server.addr).await;
    assert_eq!(
        series(
            &m,
            "mixed_r1_openrlhf_extraction_total{method=\"prompt_prefix\"}"
        ),
        n as f64
    );
    server.shut_down().await;
}

/// Garbage in any field a client controls: one result per sample (or one 400 for the request),
/// never a panic, a hang or a dropped connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_samples_get_their_own_results() {
    let server = TestServer::start(ServerConfig::default()).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let latex = format!(
        "<answer>{}{}</answer>",
        "\\frac{".repeat(20_000),
        "}".repeat(20_000)
    );
    let body = format!(
        "[{{\"task\": \"grounding\", \"answer\": [[0, 0, 1e308, 1e308]], \"response\": \"<answer>[0, 0, 1e308, 1e308]</answer>\"}},\
          {{\"task\": \"grounding\", \"answer\": [[0, 0, 10, 10]], \"image_size\": [64, 64], \"response\": \"<answer>[nan, 0, 1e400, 5] [10, 10, 0, 0]</answer>\"}},\
          {{\"task\": \"math\", \"answer\": \"1/2\", \"response\": {latex:?}}},\
          {{\"task\": \"mcq\", \"answer\": \"A\", \"meta\": {deep}, \"response\": \"<answer>A or C</answer>\"}},\
          {{\"task\": \"yes_no\", \"answer\": \"yes\", \"response\": \"{}\"}},\
          {{\"task\": \"mcq\", \"answer\": {}{}, \"response\": \"A\"}},\
          {{\"task\": \"mcq\", \"answer\": \"A\", \"response\": \"<answer>(A)</answer>\"}}]",
        "<answer>".repeat(50_000),
        "[".repeat(200),
        "]".repeat(200),
    );
    let (status, resp) = post_raw(server.addr, "/score", body.as_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let r = resp.as_array().unwrap();
    assert_eq!(r.len(), 7);
    let acc: Vec<Value> = r.iter().map(|x| x["accuracy"].clone()).collect();
    // 1e308 boxes without an image size have an infinite area: invalid, so the gold skips.
    assert!(acc[0].is_null(), "{}", r[0]);
    // NaN is not a number, 1e400 is not finite, an inverted box is dropped: no valid box.
    assert_eq!(acc[1], 0.0);
    assert_eq!(acc[2], 0.0);
    // A hedge never scores, however the line is padded.
    assert_eq!(acc[3], 0.0);
    assert_eq!(acc[4], 0.0);
    // Nested deeper than the JSON reader's limit: that sample's own error, the others score.
    assert!(
        r[5]["error"].as_str().unwrap().contains("recursion limit"),
        "{}",
        r[5]
    );
    assert_eq!(acc[6], 1.0);
    server.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_clients_get_their_own_answers() {
    let server = TestServer::start(ServerConfig::default()).await;
    let addr = server.addr;
    let clients = 32;
    let per_client = 8;
    let mut tasks = Vec::new();
    for c in 0..clients {
        tasks.push(tokio::spawn(async move {
            for k in 0..per_client {
                // Each request a different slice of items, so a mix-up between requests shows.
                let start = (c * per_client + k) * 7;
                let (body, expected) = openrlhf_batch(start, 64);
                let (status, resp) = post_json(addr, "/get_reward", &body).await;
                assert_eq!(status, StatusCode::OK, "{resp}");
                let want: Vec<f64> = expected.iter().map(|r| r.unwrap_or(0.0)).collect();
                assert_eq!(floats(&resp["rewards"]), want, "client {c} request {k}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let m = metrics(addr).await;
    let n = (clients * per_client) as f64;
    assert_eq!(
        series(
            &m,
            "mixed_r1_http_requests_total{endpoint=\"/get_reward\",status=\"200\"}"
        ),
        n
    );
    assert_eq!(
        series(
            &m,
            "mixed_r1_http_request_duration_seconds_count{endpoint=\"/get_reward\"}"
        ),
        n
    );
    assert_eq!(series(&m, "mixed_r1_requests_in_flight"), 1.0); // this /metrics request
    let total: f64 = ["yes_no", "mcq", "numeric", "chart", "grounding"]
        .iter()
        .flat_map(|t| {
            ["scored", "skipped"].map(|o| {
                series(
                    &m,
                    &format!("mixed_r1_samples_total{{task=\"{t}\",outcome=\"{o}\"}}"),
                )
            })
        })
        .sum();
    assert_eq!(total, n * 64.0);
    server.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_requests_get_400_naming_the_problem() {
    let server = TestServer::start(ServerConfig::default()).await;
    let addr = server.addr;
    let bad_json: [&[u8]; 5] = [
        b"{\"query\": [\"a\"",
        b"not json at all",
        b"",
        b"{\"query\": [\"\xff\xfe\"], \"labels\": [\"x\"]}",
        b"{\"query\": [], \"labels\": []} trailing",
    ];
    for body in bad_json {
        let (status, resp) = post_raw(addr, "/get_reward", body).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(resp["kind"], "bad_json");
        assert!(
            resp["error"]
                .as_str()
                .unwrap()
                .starts_with("the body is not valid JSON"),
            "{resp}"
        );
    }
    let ok_label = json!("{\"task\": \"mcq\", \"answer\": \"B\"}");
    let cases = [
        (
            json!({"query": "abc", "labels": [ok_label]}),
            "query",
            "invalid type: string",
        ),
        (
            json!({"query": ["a", 3], "labels": [ok_label, ok_label]}),
            "query[1]",
            "invalid type: integer",
        ),
        (json!({"labels": [ok_label]}), "query", "missing"),
        (json!({"query": ["a"]}), "labels", "missing"),
        (
            json!({"query": ["a"], "labels": [ok_label, ok_label]}),
            "labels",
            "has 2 items but query has 1",
        ),
        (
            json!({"query": ["a"], "prompts": [], "labels": [ok_label]}),
            "prompts",
            "has 0 items",
        ),
        (
            json!({"query": ["a"], "prompts": "p", "labels": [ok_label]}),
            "prompts",
            "invalid type",
        ),
        (
            json!({"query": ["a"], "labels": ["B"]}),
            "labels[0]",
            "--default-task",
        ),
        (
            json!({"query": ["a"], "labels": ["{\"task\": \"mcq\""]}),
            "labels[0]",
            "does not parse",
        ),
        (
            json!({"query": ["a"], "labels": [{"task": "grounding", "answer": [], "frame": "pixels"}]}),
            "labels[0].frame",
            "unknown variant `pixels`",
        ),
        (
            json!({"query": ["a"], "labels": [{"task": "grounding", "answer": [], "image_size": [1, "w"]}]}),
            "labels[0].image_size[1]",
            "invalid type",
        ),
        (
            json!({"query": ["a"], "labels": ["{\"task\": \"haiku\", \"answer\": \"B\"}"]}),
            "labels[0].task",
            "unknown task `haiku`",
        ),
        (
            json!({"query": ["a"], "labels": [{"task": "mcq"}]}),
            "labels[0].answer",
            "missing",
        ),
    ];
    for (body, field, msg) in cases {
        let (status, resp) = post_json(addr, "/get_reward", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(resp["kind"], "bad_field", "{resp}");
        assert_eq!(resp["field"], field, "{resp}");
        let e = resp["error"].as_str().unwrap();
        assert!(
            e.starts_with(&format!("{field}: ")) && e.contains(msg),
            "{body} -> {e}"
        );
    }
    // Unknown routes and methods answer too.
    let (status, _) = request(addr, "GET", "/nowhere", Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = request(addr, "GET", "/get_reward", Vec::new()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let m = metrics(addr).await;
    assert_eq!(
        series(
            &m,
            "mixed_r1_http_request_errors_total{endpoint=\"/get_reward\",kind=\"bad_json\"}"
        ),
        5.0
    );
    assert_eq!(
        series(
            &m,
            "mixed_r1_http_request_errors_total{endpoint=\"/get_reward\",kind=\"bad_field\"}"
        ),
        13.0
    );
    // And after all that, a good request is scored.
    let (body, expected) = openrlhf_batch(0, 6);
    let (status, resp) = post_json(addr, "/get_reward", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        floats(&resp["rewards"]),
        expected
            .iter()
            .map(|r| r.unwrap_or(0.0))
            .collect::<Vec<_>>()
    );
    server.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_bodies_and_batches_get_413() {
    let server = TestServer::start(small_limits()).await;
    let addr = server.addr;
    let max = 64 << 10;

    // Declared far beyond the limit: refused at once, before any body byte is sent.
    let head = format!(
        "POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        1u64 << 30
    );
    let raw = raw_exchange(addr, head.as_bytes()).await;
    assert_eq!(status_of(&raw), 413, "{raw}");
    let e = body_of(&raw);
    assert_eq!(e["kind"], "body_too_large");
    assert!(
        e["error"].as_str().unwrap().contains("--max-body-bytes"),
        "{e}"
    );

    // Sent in full, a bit over the limit: read to the end, then 413 (the client sees it).
    let big = format!(
        "{{\"query\": [\"{}\"], \"labels\": [\"x\"]}}",
        "a".repeat(max + 10)
    );
    let (status, resp) = post_raw(addr, "/get_reward", big.as_bytes()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        resp["error"]
            .as_str()
            .unwrap()
            .contains(&format!("of {} bytes", big.len())),
        "{resp}"
    );

    // Chunked, no Content-Length: the limit holds as the chunks arrive.
    let mut chunked =
        b"POST /score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20 {
        chunked.extend_from_slice(format!("1000\r\n{}\r\n", "[".repeat(0x1000)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let raw = raw_exchange(addr, &chunked).await;
    assert_eq!(status_of(&raw), 413, "{raw}");

    // A small body with too many samples.
    let samples: Vec<Value> = (0..101)
        .map(|_| json!({"task": "yes_no", "answer": "yes", "response": "yes"}))
        .collect();
    let (status, resp) = post_json(addr, "/score", &Value::Array(samples)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp["kind"], "batch_too_large");
    assert!(
        resp["error"]
            .as_str()
            .unwrap()
            .contains("101 samples, more than the limit of 100"),
        "{resp}"
    );
    let (body, _) = openrlhf_batch(0, 101);
    let (status, resp) = post_json(addr, "/get_reward", &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp["field"], "query");

    // Still serving.
    let (body, expected) = openrlhf_batch(0, 100);
    let (status, resp) = post_json(addr, "/get_reward", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(floats(&resp["rewards"]).len(), expected.len());
    let m = metrics(addr).await;
    assert_eq!(
        series(
            &m,
            "mixed_r1_http_request_errors_total{endpoint=\"/get_reward\",kind=\"body_too_large\"}"
        ),
        2.0
    );
    assert_eq!(
        series(
            &m,
            "mixed_r1_http_request_errors_total{endpoint=\"/score\",kind=\"body_too_large\"}"
        ),
        1.0
    );
    server.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_disconnect_mid_request_do_not_hurt_the_server() {
    let server = TestServer::start(ServerConfig::default()).await;
    let addr = server.addr;
    let (body, expected) = openrlhf_batch(0, 64);
    let body = serde_json::to_vec(&body).unwrap();
    let head = format!(
        "POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // Half a body, then gone.
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&body[..body.len() / 2]).await.unwrap();
        drop(s);
    }
    // The whole request, then gone before the answer.
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&body).await.unwrap();
        drop(s);
    }
    // Half the headers, then gone.
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&head.as_bytes()[..20]).await.unwrap();
        drop(s);
    }
    // The half bodies end as body_read errors, once the server has noticed each one.
    let mut m = String::new();
    for _ in 0..100 {
        m = metrics(addr).await;
        if series(
            &m,
            "mixed_r1_http_request_errors_total{endpoint=\"/get_reward\",kind=\"body_read\"}",
        ) == 20.0
            && series(&m, "mixed_r1_requests_in_flight") == 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        series(
            &m,
            "mixed_r1_http_request_errors_total{endpoint=\"/get_reward\",kind=\"body_read\"}"
        ),
        20.0,
        "{m}"
    );
    assert_eq!(series(&m, "mixed_r1_requests_in_flight"), 1.0, "{m}");
    // And the server answers correctly afterwards, on a fresh and on a raw connection.
    let (status, resp) = request(addr, "POST", "/get_reward", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let resp: Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(
        floats(&resp["rewards"]),
        expected
            .iter()
            .map(|r| r.unwrap_or(0.0))
            .collect::<Vec<_>>()
    );
    let mut full = head.into_bytes();
    full.extend_from_slice(&body);
    let raw = raw_exchange(addr, &full).await;
    assert_eq!(status_of(&raw), 200);
    assert_eq!(body_of(&raw)["rewards"], resp["rewards"]);
    server.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_bodies_time_out_and_full_slots_answer_busy() {
    let server = TestServer::start(ServerConfig {
        max_concurrency: 1,
        read_timeout: Duration::from_millis(1500),
        request_timeout: Duration::from_millis(400),
        ..ServerConfig::default()
    })
    .await;
    let addr = server.addr;
    let head = "POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[";
    // This client takes the only slot and then stalls.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Meanwhile another request waits for a slot until its deadline: 503 with Retry-After.
    let raw = raw_exchange(
        addr,
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]",
    )
    .await;
    assert_eq!(status_of(&raw), 503, "{raw}");
    assert!(raw.to_ascii_lowercase().contains("retry-after: 1"), "{raw}");
    assert_eq!(body_of(&raw)["kind"], "busy");
    // The stalled body runs into the read deadline: 408.
    let raw = read_response(&mut slow).await;
    assert_eq!(status_of(&raw), 408, "{raw}");
    assert_eq!(body_of(&raw)["kind"], "read_timeout");
    // The slot is free again.
    let (status, resp) = post_json(
        addr,
        "/score",
        &json!([{"task": "mcq", "answer": "A", "response": "<think>.</think><answer>A</answer>"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resp[0]["reward"], 1.5);
    server.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_finishes_requests_in_flight() {
    let server = TestServer::start(ServerConfig::default()).await;
    let addr = server.addr;
    let (body, expected) = openrlhf_batch(0, 64);
    let body = serde_json::to_vec(&body).unwrap();
    let head = format!(
        "POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body[..100]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Shut down while this request is half-way in.
    let stop = tokio::spawn(server.shut_down());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !stop.is_finished(),
        "the server stopped with a request in flight"
    );
    // No new connections are taken any more (the listener closes once the signal is seen).
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused,
        "still accepting connections after the shutdown signal"
    );
    s.write_all(&body[100..]).await.unwrap();
    let raw = read_response(&mut s).await;
    assert_eq!(status_of(&raw), 200, "{raw}");
    let want: Vec<f64> = expected.iter().map(|r| r.unwrap_or(0.0)).collect();
    assert_eq!(floats(&body_of(&raw)["rewards"]), want);
    tokio::time::timeout(Duration::from_secs(5), stop)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_and_metrics() {
    let server = TestServer::start(ServerConfig::default()).await;
    let (status, body) = request(server.addr, "GET", "/health", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let h: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(h["bmas"], false);
    let m = metrics(server.addr).await;
    assert!(m.contains("# TYPE mixed_r1_http_request_duration_seconds histogram"));
    assert_eq!(
        series(
            &m,
            "mixed_r1_http_requests_total{endpoint=\"/health\",status=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        series(
            &m,
            &format!(
                "mixed_r1_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );
    server.shut_down().await;
}
