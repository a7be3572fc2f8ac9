"""Replays the requests Grafana's OpenTSDB datasource makes (opentsdb-api.md §1) and checks
the response shapes Grafana parses."""

import urllib.parse

START = 1_796_311_000


def seed(t):
    pts = []
    for i in range(0, 3600, 10):
        for meter, base in (("021861348497", 1200), ("021861348498", 800)):
            pts.append({"metric": "linky.papp", "timestamp": START + i, "value": base + (i % 300), "tags": {"meter": meter, "phase": "1"}})
    status, _ = t.post("/api/put", pts)
    assert status == 204


def test_save_and_test_and_editor_calls(teleinfo):
    seed(teleinfo)
    assert teleinfo.get("/api/suggest?q=cpu&type=metrics")[0] == 200
    status, metrics = teleinfo.get("/api/suggest?type=metrics&q=linky&max=1000")
    assert "linky.papp" in metrics
    assert all(isinstance(m, str) for m in metrics)
    assert "021861348497" in teleinfo.get("/api/suggest?type=tagv&q=0218&max=1000")[1]
    assert "meter" in teleinfo.get("/api/suggest?type=tagk&q=&max=1000")[1]
    aggs = teleinfo.get("/api/aggregators")[1]
    assert {"avg", "sum", "min", "max", "zimsum", "mimmin", "mimmax", "dev", "count"} <= set(aggs)
    assert {"literal_or", "iliteral_or", "wildcard", "regexp", "not_literal_or"} <= set(teleinfo.get("/api/config/filters")[1])
    m = urllib.parse.quote("linky.papp{meter=*}")
    lookup = teleinfo.get(f"/api/search/lookup?m={m}&limit=0")[1]
    assert sorted(r["tags"]["meter"] for r in lookup["results"]) == ["021861348497", "021861348498"]
    assert teleinfo.get("/api/version")[1]["version"].startswith("2.")


def check_series(body, arrays=False):
    assert isinstance(body, list) and body
    for s in body:
        assert set(s) >= {"metric", "tags", "aggregateTags", "dps"}
        assert isinstance(s["tags"], dict) and isinstance(s["aggregateTags"], list)
        if arrays:
            assert isinstance(s["dps"], list)
            for ts, v in s["dps"]:
                assert isinstance(ts, int) and len(str(ts)) == 10
                assert isinstance(v, (int, float))
        else:
            assert isinstance(s["dps"], dict)
            for k, v in s["dps"].items():
                assert k.isdigit() and len(k) == 10, k  # Unix seconds, as Grafana expects
                assert isinstance(v, (int, float)) and v == v  # never null, never NaN


def test_current_backend_body(teleinfo):
    body = {
        "start": START, "end": START + 3600,
        "queries": [{
            "metric": "linky.papp", "aggregator": "sum", "downsample": "5m-avg",
            "filters": [{"type": "literal_or", "tagk": "meter", "filter": "021861348497|021861348498", "groupBy": True}],
            "explicitTags": False,
        }],
    }
    status, res = teleinfo.post("/api/query", body)
    assert status == 200, res
    check_series(res)
    assert len(res) == 2
    assert {r["tags"]["meter"] for r in res} == {"021861348497", "021861348498"}


def test_tsdb_24_arrays_and_fill(teleinfo):
    body = {"start": START, "end": START + 7200, "queries": [{"metric": "linky.papp", "aggregator": "sum", "downsample": "10m-max-null", "tags": {"meter": "*"}}]}
    status, res = teleinfo.post("/api/query?arrays=true", body)
    assert status == 200, res
    check_series(res, arrays=True)
    # "null" fill: empty buckets are omitted rather than sent as null (Grafana would read 0).
    assert all(ts < START + 3600 + 600 for ts, _ in res[0]["dps"])


def test_legacy_frontend_body(teleinfo):
    body = {
        "start": START * 1000, "msResolution": False, "globalAnnotations": True, "showQuery": True,
        "queries": [
            {"metric": "linky.papp", "aggregator": "avg", "downsample": "1m-avg", "rate": True,
             "rateOptions": {"counter": False, "dropResets": True}, "tags": {"meter": "021861348497|021861348498"}},
            {"aggregator": "sum", "metric": "linky.papp"},
        ],
    }
    status, res = teleinfo.post("/api/query", body)
    assert status == 200, res
    check_series(res)
    assert {r["query"]["index"] for r in res} == {0, 1}


def test_opentsdb_errors(teleinfo):
    status, res = teleinfo.post("/api/query", {"start": "1h-ago", "queries": [{"metric": "no.such", "aggregator": "sum"}]})
    assert status == 400
    assert res["error"]["code"] == 400 and "No such name" in res["error"]["message"]
    status, res = teleinfo.post("/api/query", {"start": 0, "end": "now", "queries": [{"metric": "linky.papp", "aggregator": "sum", "downsample": "1s-avg"}]})
    assert status == 400 and "limit" in res["error"]["message"]
