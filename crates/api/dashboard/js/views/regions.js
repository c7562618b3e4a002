// Regions: each repository's health and the space its images take.

import { api } from "../api.js";
import { h, mount, statusBadge, table } from "../dom.js";
import { bytes, money } from "../format.js";

export async function render(root) {
  document.title = "Regions · drydock";
  const [regions, usage] = await Promise.all([
    api.all("/v2/regions", "regions"),
    api.get("/drydock/v1/usage").then((r) => r.usage).catch(() => null),
  ]);
  const used = new Map((usage?.regions || []).map((r) => [r.region, r]));
  const rows = regions.map((r) => {
    const u = used.get(r.slug);
    return h(
      "tr",
      null,
      h("td", null, r.name, h("span", { class: "sub mono" }, r.slug)),
      h("td", null, r.available ? statusBadge("ok", "available") : statusBadge("unavailable")),
      h("td", { class: "num" }, bytes(u?.stored_bytes ?? 0)),
      h("td", { class: "num" }, bytes(u?.logical_bytes ?? 0)),
      h("td", { class: "num" }, bytes(u?.frees_bytes ?? 0)),
      h("td", { class: "num" }, money(u?.monthly_cost ?? 0, usage?.currency)),
    );
  });
  const num = (text) => h("th", { class: "num", scope: "col" }, text);
  mount(
    root,
    h("div", { class: "head" }, h("div", null, h("h1", null, "Regions"), h("p", { class: "muted" }, "Each region is one repository: a directory or an S3 bucket, set in the server's configuration."))),
    table(["Region", "Health", num("Stored"), num("Logical size"), num("Deleting all would free"), num("Monthly cost")], rows, "Regions"),
    usage ? null : h("p", { class: "muted" }, "Sizes need a token that may read droplets and volumes."),
  );
}
