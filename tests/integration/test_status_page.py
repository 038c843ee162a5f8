"""The status page of ``changelake ui`` in a real headless Chromium (Debian's, driven by Playwright).

Set CHANGELAKE_UPDATE_SCREENSHOT=1 to also write the screenshot docs/operations.md shows
(docs/operations-status-page.png).
"""

from __future__ import annotations

import gzip
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from changelake_cli.invoke import LocalInvoker
from changelake_cli.stack import Aws, Target
from changelake_cli.status import Operator
from changelake_cli.web.server import TOKEN_HEADER, PageApp, make_server
from changelake_local.aws import client
from changelake_local.snapshots import write_export
from changelake_testing.tables import pk_sk_table
from tests.integration.conftest import ROWS_PER_HOUR, LocalStack, days_ago, held_fan_out, this_hour

pytestmark = pytest.mark.integration

#: Debian's chromium; `make setup` provisions it (scripts/provision-browser), CHROMIUM moves it.
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "operations-status-page.png"
TABLE = "invoices"
#: The second table: bootstrapped from an export, then two hours of changes of different sizes.
OTHER = "customers"
OTHER_HOURS = {5: 12, 2: 45}  # hours ago: changes
EXPORTED_ITEMS = 5
#: Generous: under a full test run on two shared cores a status read takes seconds.
WAIT_MS = 120_000


def export_of_other_table(stack: LocalStack, at: datetime) -> str:
    """OTHER created on the local stack with EXPORTED_ITEMS items, exported at ``at`` (its summary URL)."""
    dynamodb = client("dynamodb", stack.endpoint)
    dynamodb.create_table(**pk_sk_table(OTHER))
    items = [
        {"pk": {"S": f"customer#{i}"}, "sk": {"S": "profile"}, "name": {"S": f"n{i}"}}
        for i in range(EXPORTED_ITEMS)
    ]
    return write_export(stack.endpoint, stack.stack.bucket, OTHER, items, at)


@pytest.fixture(scope="module")
def page(local_stack: LocalStack) -> Iterator[tuple[str, PageApp]]:
    """The page server on a free port of 127.0.0.1, for a lake of two tables: two pending hours of
    'invoices' yesterday; 'customers' bootstrapped from an export taken between its two hours."""
    local_stack.put_hour(TABLE, days_ago(1, hour=10), seed=21)
    local_stack.put_hour(TABLE, days_ago(1, hour=11), seed=22)
    for seed, (hours_ago, rows) in enumerate(OTHER_HOURS.items(), start=31):
        local_stack.put_hour(OTHER, this_hour() - timedelta(hours=hours_ago), seed=seed, rows=rows)
    summary = export_of_other_table(local_stack, this_hour() - timedelta(hours=4))
    target = Target(stack=local_stack.stack.name, region="us-east-1", endpoint=local_stack.endpoint)
    operator = Operator.connect(Aws(target))
    app = PageApp(operator, LocalInvoker(local_stack.endpoint, target.stack))
    # as `changelake snapshot --table customers --bootstrap <summary>` does
    _result, error = app.invoker(
        "SnapshotFunction",
        operator.stack.function("SnapshotFunction"),
        {"table": OTHER, "bootstrap": summary},
    )
    assert error is None, error
    server = make_server(app, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{app.port}", app
    server.shutdown()
    server.server_close()


def test_cards_download_and_a_compaction_and_a_snapshot_from_their_buttons(
    page: tuple[str, PageApp], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, _app = page
    day = f"{days_ago(1):%Y-%m-%d}"
    assert CHROMIUM.is_file(), f"no chromium at {CHROMIUM}: `make setup` installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(
                timezone_id="Asia/Tokyo", accept_downloads=True, viewport={"width": 1280, "height": 900}
            )
            tab = context.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            # GIVEN the page, opened by a viewer in Japan
            tab.goto(url)
            # THEN the cards show what the status endpoint says, and times are in the viewer's zone beside UTC
            stored = tab.locator('[data-card="Changes stored, 7 days"] .value')
            expect(stored).not_to_have_text("...", timeout=WAIT_MS)
            status = json.loads(urllib.request.urlopen(f"{url}/api/pipeline/status", timeout=120).read())
            expected = sum(d["raw"]["changes"] or 0 for t in status["tables"] for d in t["days"])
            assert int(stored.inner_text()) == expected >= 2 * ROWS_PER_HOUR
            expect(tab.locator("#asof")).to_contain_text("GMT+9")
            expect(tab.locator("#asof")).to_contain_text("UTC)")
            # AND each table has its chart of the last 48 hours: one bar per hour, labelled with its peak
            invoices_peak = days_ago(1, hour=10)
            other_peak = this_hour() - timedelta(hours=2)
            for table, peak, peak_hour, bars in (
                (TABLE, ROWS_PER_HOUR, invoices_peak, 2),
                (OTHER, OTHER_HOURS[2], other_peak, 2),
            ):
                chart = tab.locator(f'.panel[data-table="{table}"] svg.chart')
                expect(chart.locator("rect.bar")).to_have_count(48)
                expect(chart.locator("rect.bar:not(.zero)")).to_have_count(bars)
                expect(chart.locator("rect.bar.peak")).to_have_attribute("data-count", str(peak))
                label = chart.get_attribute("aria-label") or ""
                assert f"peak {peak} in the hour from " in label, label
                assert f"({peak_hour:%Y-%m-%d %H}:00 UTC)" in label, label
                assert chart.get_attribute("role") == "img"
            # AND the bootstrapped table says when it was bootstrapped and from what
            bootstrap = tab.locator(f'.panel[data-table="{OTHER}"] dd').nth(4)
            expect(bootstrap).to_contain_text("from an export of")
            expect(bootstrap).to_contain_text(f"{EXPORTED_ITEMS} items")
            expect(tab.locator(f'.panel[data-table="{TABLE}"] dd').nth(4)).to_contain_text("not bootstrapped")
            # WHEN the viewer downloads yesterday's first pending hour from the history tab
            tab.click('nav button[data-tab="history"]')
            chip = tab.locator(f'tr[data-day="{day}"]:has-text("{TABLE}") a.hour').first
            expect(chip).to_have_class("hour pending")
            with tab.expect_download() as downloading:
                chip.click()
            saved = tmp_path / downloading.value.suggested_filename
            downloading.value.save_as(saved)
            # THEN the file is that hour's data as gzip JSON Lines
            assert saved.name == f"{TABLE}-raw-{day}-{chip.inner_text()}.jsonl.gz"
            assert len(gzip.decompress(saved.read_bytes()).splitlines()) == ROWS_PER_HOUR
            # WHEN the viewer runs a compaction of that day from its button
            tab.click('nav button[data-tab="status"]')
            tab.select_option("#run-table", TABLE)
            tab.fill("#run-dt", day)
            tab.click("#run-compaction")
            # THEN the result shows in place, green: a sentence, a short table, the raw JSON folded away
            outcome = tab.locator("#run-outcome")
            expect(outcome).to_have_attribute("data-result", "succeeded", timeout=WAIT_MS)
            rows = 2 * ROWS_PER_HOUR
            expect(outcome.locator("#run-sentence")).to_contain_text(
                f"Compaction of {TABLE} on {day} succeeded in "
            )
            expect(outcome.locator("#run-sentence")).to_contain_text(
                f"2 hours compacted, 0 hours already up to date; {rows} changes kept of {rows} read."
            )
            expect(outcome.locator('table.run-figures tr:has-text("changes kept") td')).to_have_text(
                str(rows)
            )
            raw = outcome.locator("details pre")
            expect(raw).to_be_hidden()
            outcome.locator("details summary").click()
            expect(raw).to_be_visible()
            expect(raw).to_contain_text(f'"rows_out": {rows}')
            # AND the card of the last compaction shows it, and both hours are compacted now
            expect(tab.locator('[data-card="Last compaction"] .value')).to_have_text(
                "succeeded", timeout=WAIT_MS
            )
            expect(tab.locator('[data-card="Last compaction"] .detail')).to_contain_text(
                f"{2 * ROWS_PER_HOUR} rows"
            )
            tab.click('nav button[data-tab="history"]')
            chips = tab.locator(f'tr[data-day="{day}"]:has-text("{TABLE}") a.hour')
            expect(chips.first).to_have_class("hour compacted", timeout=WAIT_MS)
            expect(tab.locator("#runs tbody tr").first).to_contain_text(TABLE)
            tab.click('nav button[data-tab="status"]')
            # WHEN the viewer builds that day's snapshot from its button
            tab.click("#run-snapshot")
            # THEN the result shows in place, and the card of the last snapshot shows the run
            sentence = outcome.locator("#run-sentence")
            expect(sentence).to_contain_text(f"Snapshot of {TABLE} on {day} succeeded in ", timeout=WAIT_MS)
            expect(sentence).to_contain_text("1 day built")
            expect(outcome.locator("details pre")).to_contain_text(f'"{TABLE}/dt={day}"')
            last = json.loads(urllib.request.urlopen(f"{url}/api/pipeline/latest", timeout=120).read())
            snapshot = last["runs"]["snapshot"]
            assert (snapshot["result"], snapshot["tables"]) == ("succeeded", [TABLE])
            card = tab.locator('[data-card="Last snapshot"]')
            expect(card.locator(".value")).to_have_text("succeeded", timeout=WAIT_MS)
            expect(card.locator(".detail")).to_contain_text(f"{snapshot['rows']} rows")
            # AND the table's panel shows its last compaction and snapshot and the items of that day
            facts = tab.locator(f'.panel[data-table="{TABLE}"] dd')
            expect(facts.nth(1)).to_contain_text("succeeded")
            expect(facts.nth(2)).to_contain_text("succeeded")
            expect(facts.nth(3)).to_have_text(f"{day}: {snapshot['rows']} items")
            tab.screenshot(path=str(tmp_path / "status-page.png"), full_page=True)
            if os.environ.get("CHANGELAKE_UPDATE_SCREENSHOT") == "1":
                SCREENSHOT.parent.mkdir(exist_ok=True)
                tab.screenshot(path=str(SCREENSHOT), full_page=True)
            assert errors == []
        finally:
            browser.close()


def test_the_page_shows_a_running_fan_out_and_its_pieces(
    page: tuple[str, PageApp], local_stack: LocalStack
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, _app = page
    day = f"{days_ago(1):%Y-%m-%d}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            tab = browser.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            # GIVEN a fan-out of yesterday's snapshot of OTHER in 4 buckets, held with bucket 0 built
            with held_fan_out(local_stack, OTHER, day, count=4) as execution:
                # WHEN the page is opened
                tab.goto(url)
                # THEN it lists the execution, the folder its pieces build and 1 of 4 pieces built
                running = tab.locator(f'#fan-outs li[data-execution="{execution}"]')
                expect(running).to_contain_text(f"{OTHER} dt={day} (started ", timeout=WAIT_MS)
                expect(running).to_contain_text(f"snapshot/{OTHER}/dt={day}/: 1 of 4 pieces built")
                assert running.get_attribute("data-built") == "1"
            # AND once it ended, the page says none runs
            tab.reload()
            expect(tab.locator("#fan-outs")).to_have_text("No fan-out running.", timeout=WAIT_MS)
            assert errors == []
        finally:
            browser.close()


def test_settings_come_from_the_stack(page: tuple[str, PageApp]) -> None:
    url, app = page
    settings = json.loads(urllib.request.urlopen(f"{url}/api/pipeline/settings", timeout=120).read())
    assert settings["bucket"] == app.operator.stack.bucket
    assert settings["functions"]["CompactionFunction"] == app.operator.stack.function("CompactionFunction")
    assert settings["parameters"]["CompactionSchedule"] == "cron(15 0 * * ? *)"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 403), ({TOKEN_HEADER: "guessed"}, 403), ({"Host": "evil.example:80"}, 403)],
)
def test_a_run_needs_the_pages_token_and_our_host(
    page: tuple[str, PageApp], headers: dict[str, str], status: int
) -> None:
    # GIVEN a POST another site could make (no token, a wrong one, or through a rebound host name)
    url, _app = page
    request = urllib.request.Request(
        f"{url}/api/pipeline/run",
        data=json.dumps({"kind": "compaction", "table": TABLE, "dt": "2026-11-20"}).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    # WHEN it reaches the server  THEN it is refused and nothing runs
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == status


def test_the_token_lets_a_script_run_and_bad_requests_are_refused(page: tuple[str, PageApp]) -> None:
    url, app = page
    request = urllib.request.Request(
        f"{url}/api/pipeline/run",
        data=json.dumps({"kind": "compaction", "table": "nope", "dt": "2026-11-20"}).encode(),
        headers={"Content-Type": "application/json", TOKEN_HEADER: app.token},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=120)
    assert refused.value.code == 400
    assert "no table 'nope'" in json.loads(refused.value.read())["error"]
