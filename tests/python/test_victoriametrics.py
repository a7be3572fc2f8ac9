"""VictoriaMetrics as an oracle: the same points go to both through OpenTSDB /api/put;
per-bucket avg and max, and hourly increase of an energy index, must agree."""

import random
import time

METER = "041776199277"


def test_same_answers_as_victoriametrics(teleinfo, victoria):
    rnd = random.Random(42)
    now = int(time.time())
    # Six whole hours ending an hour ago; points on odd seconds so that no point sits on a
    # bucket boundary (VictoriaMetrics' windows are (t-w, t], ours [t, t+w)).
    end = (now - 3600) // 3600 * 3600
    start = end - 6 * 3600
    pts, power, index = [], 1500.0, 12_345_678
    for t in range(start + 1, end, 2):
        power = max(0.0, power + rnd.uniform(-120, 120))
        index += int(power * 2 / 3600) + rnd.randint(0, 1)
        pts.append({"metric": "SINSTS", "timestamp": t, "value": round(power), "tags": {"meter": METER}})
        pts.append({"metric": "EASF01", "timestamp": t, "value": index, "tags": {"meter": METER}})
    for i in range(0, len(pts), 5000):
        status, body = teleinfo.post("/api/put", pts[i:i + 5000])
        assert status == 204, body
        victoria.put(pts[i:i + 5000])
    for metric in ("SINSTS", "EASF01"):
        n = sum(1 for p in pts if p["metric"] == metric)
        assert victoria.wait_for_samples(metric, n) == n, metric

    # Per 5-minute bucket avg and max.
    for agg, fn in (("avg", "avg_over_time"), ("max", "max_over_time")):
        q = {"start": start, "end": end, "queries": [{"metric": "SINSTS", "aggregator": "sum", "downsample": f"5m-{agg}", "tags": {"meter": METER}}]}
        status, res = teleinfo.post("/api/query", q)
        assert status == 200, res
        ours = {int(k): v for k, v in res[0]["dps"].items()}
        vm = victoria.query_range(f'{fn}(SINSTS{{meter="{METER}"}}[5m])', start + 300, end, "300")
        theirs = {int(ts) - 300: float(v) for ts, v in vm["data"]["result"][0]["values"]}
        assert len(ours) == 72 and set(ours) == set(theirs), (sorted(ours)[:3], sorted(theirs)[:3])
        for ts in ours:
            assert abs(ours[ts] - theirs[ts]) <= 1e-9 * max(1.0, abs(theirs[ts])), (agg, ts, ours[ts], theirs[ts])

    # Hourly increase of the index: our energy per local hour vs increase()[1h].
    status, en = teleinfo.get(f"/api/v1/meters/{METER}/energy?period=hour&from={start * 1000}&to={end * 1000}")
    assert status == 200, en
    ours = {p["start_ms"] // 1000: p["energy_wh"]["EASF01"] for p in en["periods"]}
    vm = victoria.query_range(f'increase(EASF01{{meter="{METER}"}}[1h])', start + 3600, end, "3600")
    theirs = {int(ts) - 3600: float(v) for ts, v in vm["data"]["result"][0]["values"]}
    # The first hour has no reading before it: both count from its first reading only
    # (VictoriaMetrics extrapolates there, so compare the hours that follow).
    common = sorted(set(ours) & set(theirs))[1:]
    assert len(common) == 5, (ours, theirs)
    for ts in common:
        assert abs(ours[ts] - theirs[ts]) < 1e-6, (ts, ours[ts], theirs[ts])
