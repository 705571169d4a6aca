"""Every view of the console in Chromium at a desktop (1280 px) and a phone (390 px) width.

Each view is saved as a screenshot in test-artifacts/console/ (to look at, and to compare between
runs), and checked for what a broken layout would show: the page wider than the window, a control
out of reach, a table row whose cells or buttons leave its line, a long name stretching a column,
an input without a label or a button without a name.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.access.test_keys_e2e import ADMIN, call
from tests.console.conftest import shot, sign_in

DAY = 86400.0
LONG_NAME = "n" * 256
LONG_TENANT = "t" * 64

# Problems anyone would see, whatever the view: page overflow, controls cut off, no label or name.
PAGE_PROBLEMS = """() => {
  const problems = [];
  const vw = document.documentElement.clientWidth;
  const describe = (el) => `${el.tagName.toLowerCase()}#${el.id || ""} "${(el.getAttribute("aria-label") || el.textContent).trim().slice(0, 30)}"`;
  if (document.documentElement.scrollWidth > vw) problems.push(`the page is ${document.documentElement.scrollWidth} px wide in ${vw} px`);
  for (const el of document.querySelectorAll("button, a, input, select, h1, h2, label")) {
    if (!el.checkVisibility()) continue;
    const wrap = el.closest(".table-wrap");
    if (wrap && wrap.scrollWidth > wrap.clientWidth) continue;  // reachable by scrolling its table
    const r = el.getBoundingClientRect();
    if (r.left < -0.5 || r.right > vw + 0.5) problems.push(`${describe(el)} spans ${r.left}..${r.right} px`);
  }
  for (const el of document.querySelectorAll("input, select")) {
    if (el.checkVisibility() && !el.labels?.length && !el.getAttribute("aria-label")) problems.push(`${describe(el)} has no label`);
  }
  for (const el of document.querySelectorAll("button, a")) {
    if (el.checkVisibility() && !(el.getAttribute("aria-label") || el.textContent).trim()) problems.push(`${describe(el)} has no name`);
  }
  return problems;
}"""

KEY_ROWS = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return { top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width }; };
  const wrap = document.querySelector("#keys").closest(".table-wrap");
  return {
    vw: document.documentElement.clientWidth, scroll: wrap.scrollWidth, client: wrap.clientWidth,
    heads: [...document.querySelectorAll("#keys thead th")].map(box),
    rows: [...document.querySelectorAll("#keys tbody tr")].map((tr) => {
      const name = tr.querySelector("td.cell-name");
      const text = name.querySelector(".truncate");
      return { id: tr.dataset.keyId, row: box(tr), cells: [...tr.cells].map(box), buttons: [...tr.querySelectorAll("button")].map(box),
               name: { ...box(name), title: text.title, cut: text.scrollWidth > text.clientWidth || text.scrollHeight > text.clientHeight + 1 } };
    }),
  };
}"""

DIALOG = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return { top: r.top, bottom: r.bottom, left: r.left, right: r.right }; };
  const primary = document.querySelector("#dialog-actions .primary");
  const code = document.querySelector("#dialog code");
  return { vw: document.documentElement.clientWidth, vh: innerHeight, dialog: box(document.querySelector("#dialog")),
           primary: box(primary), code: code && box(code), focus: document.activeElement.id };
}"""


def inside(inner: dict[str, float], outer: dict[str, float], slack: float = 0.5) -> bool:
    return (inner["left"] >= outer["left"] - slack and inner["right"] <= outer["right"] + slack
            and inner["top"] >= outer["top"] - slack and inner["bottom"] <= outer["bottom"] + slack)


async def check_page(page: Any, name: str, width: int) -> None:
    await page.screenshot(path=shot(f"{name}-{width}"), full_page=True)
    assert await page.evaluate(PAGE_PROBLEMS) == [], f"{name} at {width} px"


async def check_key_rows(page: Any, width: int, long_key: str) -> None:
    facts = await page.evaluate(KEY_ROWS)
    vw = facts["vw"]
    for r in facts["rows"]:
        row = r["row"]
        assert row["left"] >= 0 and row["right"] <= vw + 0.5, f"row {r['id']} leaves the window"
        for b in r["buttons"]:  # every action reachable, and on its own row's line / card
            assert inside(b, row) and b["right"] <= vw, f"a button of {r['id']} is out of its row: {b} {row}"
        if width >= 1000:
            assert facts["scroll"] <= facts["client"], "the key table needs a scrollbar at a desktop width"
            assert len(r["cells"]) == len(facts["heads"])
            for c, head in zip(r["cells"], facts["heads"], strict=True):  # each cell fills its row's line and its column
                assert abs(c["top"] - row["top"]) <= 1 and abs(c["bottom"] - row["bottom"]) <= 1, (r["id"], c, row)
                assert abs(c["left"] - head["left"]) <= 1 and abs(c["right"] - head["right"]) <= 1, (r["id"], c, head)
            assert len({round(b["top"]) for b in r["buttons"]}) <= 1, "the actions wrapped"
            assert row["bottom"] - row["top"] < 60, "a row taller than one line of buttons"
    long = next(r for r in facts["rows"] if r["id"] == long_key)
    assert long["name"]["title"] == LONG_NAME and long["name"]["cut"]  # the whole name on hover, an ellipsis in the cell
    assert long["name"]["width"] <= (260 if width >= 1000 else vw)


@pytest.mark.parametrize("width", [1280, 390])
async def test_every_view_fits_and_keeps_its_controls_in_reach(console, console_clock, https, width: int) -> None:
    gw, page = console
    await gw.accounts.create_tenant({"id": LONG_TENANT, "name": "A tenant with a long name " * 4, "plan": "starter"}, ADMIN)
    await gw.accounts.create_user("acme", {"name": "Olive Owner", "email": "olive@acme.test", "role": "owner"}, ADMIN)
    console_clock[0] = -100 * DAY
    await gw.accounts.create_key(
        {"tenant_id": "acme", "name": "expired long ago", "scope": "read_only", "validity_days": 10}, ADMIN)
    console_clock[0] = 0.0
    long_key, _ = await gw.accounts.create_key({"tenant_id": LONG_TENANT, "name": LONG_NAME, "scope": "read_write"}, ADMIN)
    gone, secret = await gw.accounts.create_key({"tenant_id": "acme", "name": "revoked", "scope": "read_write"}, ADMIN)
    await call(https, gw, "/api/v1/visitors?" + "q=" + "x" * 300, **{"X-API-Key": secret})
    await gw.accounts.revoke_key(gone.id, ADMIN)
    await page.set_viewport_size({"width": width, "height": 900 if width > 500 else 844})
    await page.reload()
    await page.get_by_label("Admin token").wait_for()
    await check_page(page, "sign-in", width)

    await sign_in(page)
    await page.get_by_role("table", name="API keys").wait_for()
    await check_page(page, "keys", width)
    await check_key_rows(page, width, long_key.id)

    await page.get_by_role("button", name="New key").click()
    assert await page.evaluate("document.activeElement.id") == "new-name"
    await page.get_by_label("Scope").select_option("custom")
    await page.get_by_role("button", name="Add resource limit").click()
    await page.screenshot(path=shot(f"create-{width}"))
    facts = await page.evaluate(DIALOG)
    window = {"left": 0, "top": 0, "right": facts["vw"], "bottom": facts["vh"]}
    assert inside(facts["dialog"], window) and inside(facts["primary"], window), facts  # Create in reach, unscrolled
    assert await page.evaluate(PAGE_PROBLEMS) == [], f"create dialog at {width} px"
    await page.get_by_label("Scope").select_option("read_only")
    await page.get_by_label("Name", exact=True).fill("layout check")
    await page.get_by_role("button", name="Create", exact=True).click()
    await page.locator("#new-secret").wait_for()
    await page.screenshot(path=shot(f"secret-{width}"))
    facts = await page.evaluate(DIALOG)
    assert inside(facts["code"], facts["dialog"]) and inside(facts["primary"], window), facts
    assert await page.evaluate(PAGE_PROBLEMS) == [], f"secret dialog at {width} px"
    await page.get_by_role("button", name="Done").click()

    for view, heading in (("Tenants", "Tenants"), ("Audit", "Audit trail"), ("Calls", "Call log")):
        await page.get_by_role("link", name=view, exact=True).click()
        await page.get_by_role("heading", name=heading).wait_for()
        await page.locator("tbody tr:not(.empty)").first.wait_for()
        await check_page(page, view.lower(), width)

    await page.get_by_role("link", name="Usage", exact=True).click()
    await page.get_by_role("heading", name="Usage of Acme Corp").wait_for()
    await page.locator("#usage-latency canvas").wait_for()
    for summary in await page.get_by_text("Table view", exact=True).all():
        await summary.click()
    await check_page(page, "usage", width)
