"""``redress bench telegram`` at a tiny size: every message goes through, figures have anchors."""

from __future__ import annotations

import pytest

from redress.connectors.telegram.bench import TARGET_MEDIA_PER_S, run_bench


def test_the_bench_runs_the_bot_over_http_and_reports_figures_beside_anchors() -> None:
    result = run_bench(messages=30, export_messages=50, bank_size=50)
    figures = result.as_dict()
    bot = figures["bot"]
    assert isinstance(bot, dict)
    assert bot["media_messages"] == 30
    assert bot["media_per_s"] > 0
    assert bot["anchor_sink_alone_per_s"] > 0
    assert bot["ratio_to_target"] == pytest.approx(
        result.bot_media_per_s / TARGET_MEDIA_PER_S, rel=1e-3
    )
    # The bot process's own CPU time (the fake server runs in another process).
    assert bot["cpu_ms_per_message"] > 0
    assert bot["anchor_sink_alone_cpu_ms_per_message"] > 0
    assert bot["in_process_media_per_s"] > 0
    # The sink alone in the bot's slices, and the fake server's own CPU time, are reported.
    assert bot["anchor_sink_batched_per_s"] > 0
    assert bot["ratio_to_sink_batched"] == pytest.approx(
        result.bot_media_per_s / result.sink_batched_media_per_s, rel=1e-3
    )
    assert bot["fake_server_cpu_ms_per_message"] is not None
    assert "same cores" in str(bot["fake_server"])
    export = figures["export"]
    assert isinstance(export, dict)
    assert export["messages"] == 50
    assert export["media"] == 10
    assert export["anchor_ijson_parse_messages_per_s"] > 0
