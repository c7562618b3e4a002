// Usage and cost: what each droplet and volume's images take up, and what that costs a month.

import { api } from "../api.js";
import { h, mount, table } from "../dom.js";
import { bytes, money } from "../format.js";

export async function render(root) {
  document.title = "Usage and cost · drydock";
  const { usage } = await api.get("/drydock/v1/usage");
  const t = usage.totals;
  const num = (text) => h("th", { class: "num", scope: "col" }, text);
  const resources = [...usage.resources].sort((a, b) => b.stored_bytes - a.stored_bytes);
  const rows = resources.map((r) =>
    h(
      "tr",
      null,
      h("td", null, h("a", { href: `#/${r.resource_type}s/${r.resource_id}` }, r.name || `${r.resource_type} ${r.resource_id}`), h("span", { class: "sub" }, r.resource_type)),
      h("td", { class: "num" }, String(r.backups)),
      h("td", { class: "num" }, String(r.snapshots)),
      h("td", { class: "num" }, bytes(r.logical_bytes)),
      h("td", { class: "num" }, bytes(r.stored_bytes)),
      h("td", { class: "num" }, bytes(r.frees_bytes)),
      h("td", { class: "num" }, money(r.monthly_cost, usage.currency)),
    ),
  );
  mount(
    root,
    h("h1", null, "Usage and cost"),
    h(
      "div",
      { class: "cards" },
      h("div", { class: "card" }, h("h2", null, money(t.monthly_cost, usage.currency)), h("p", { class: "muted" }, "a month, at this server's prices")),
      h("div", { class: "card" }, h("h2", null, bytes(t.stored_bytes)), h("p", { class: "muted" }, `stored for ${bytes(t.logical_bytes)} of images (deduplicated and compressed)`)),
      h("div", { class: "card" }, h("h2", null, String(t.images)), h("p", { class: "muted" }, "snapshots and backups")),
    ),
    h("h2", null, "By droplet and volume"),
    rows.length
      ? table(["Name", num("Backups"), num("Snapshots"), num("Logical"), num("Stored"), num("Deleting would free"), num("Monthly cost")], rows, "Usage by droplet and volume")
      : h("div", { class: "empty" }, h("p", null, "Nothing is stored yet.")),
  );
}
