import json

from zipp.runtime import Runtime
from zipp.stage import Resources, Stage, StageContext, StageResult, run_pipeline


class CountEvens(Stage):
    name = "count_evens"
    resources = Resources(cpus=1)

    def __init__(self):
        self.setups = 0

    def setup(self, ctx):
        self.setups += 1

    def run(self, ctx):
        res = StageResult(rows_in=10)
        for i in range(10):
            if i % 2:
                res.drop("odd")
            else:
                res.rows_out += 1
        return res


def test_run_pipeline_writes_stats_json_and_logs(tmp_path, make_config, caplog):
    cfg = make_config()
    ctx = StageContext(cfg=cfg, run_dir=tmp_path / "run", runtime=Runtime(cfg.runtime))
    stage = CountEvens()
    with caplog.at_level("INFO", logger="zipp.stage"):
        results = run_pipeline([stage], ctx)
    assert results["count_evens"].rows_out == 5
    assert stage.setups == 1
    stats = json.loads((tmp_path / "run" / "stats" / "count_evens.json").read_text())
    assert stats["rows_in"] == 10 and stats["rows_out"] == 5 and stats["drops"] == {"odd": 5}
    assert stats["resources"]["cpus"] == 1
    assert any("stage=count_evens rows_in=10 rows_out=5 drops=odd=5" in r.message for r in caplog.records)


def test_runtime_is_lazy(make_config):
    cfg = make_config()
    rt = Runtime(cfg.runtime)
    assert not rt.has_spark  # nothing started by construction
    rt.stop()
