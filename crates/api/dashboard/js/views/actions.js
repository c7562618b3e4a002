// Recent and running actions, with progress, refreshed while any runs.

import { api } from "../api.js";
import { h, mount, table } from "../dom.js";
import { duration, time } from "../format.js";
import { actionProgress } from "../live.js";

const REFRESH_MS = 1500;
const SHOWN = 100;

function resourceLink(a) {
  const id = a.drydock?.resource_id ?? a.resource_id;
  if (a.resource_type === "droplet") return h("a", { href: `#/droplets/${id}` }, `droplet ${id}`);
  if (a.resource_type === "volume") return h("a", { href: `#/volumes/${id}` }, `volume ${id}`);
  return `${a.resource_type} ${id ?? ""}`;
}

export async function render(root) {
  document.title = "Actions · drydock";
  const body = h("div");
  mount(root, h("div", { class: "head" }, h("div", null, h("h1", null, "Actions"), h("p", { class: "muted" }, "Snapshots, backups, restores and copies: the newest first."))), body);
  const draw = async () => {
    const { actions } = await api.get("/v2/actions", { per_page: SHOWN });
    if (!body.isConnected) return;
    const running = actions.filter((a) => a.status === "in-progress");
    const rows = actions.map((a) =>
      h(
        "tr",
        null,
        h("td", null, String(a.id)),
        h("td", null, a.type),
        h("td", null, resourceLink(a)),
        h("td", null, a.region_slug),
        h("td", null, actionProgress(a)),
        h("td", null, time(a.started_at)),
        h("td", null, a.status === "in-progress" ? "running" : duration(a.started_at, a.completed_at)),
      ),
    );
    mount(
      body,
      h("p", null, running.length ? `${running.length} running.` : "Nothing is running."),
      actions.length
        ? table(["ID", "Type", "On", "Region", "Status", "Started", "Duration"], rows, "Recent actions")
        : h("div", { class: "empty" }, h("p", null, "No actions yet. Taking a snapshot or enabling backups starts one.")),
    );
    if (running.length) setTimeout(() => body.isConnected && draw().catch(() => {}), REFRESH_MS);
  };
  await draw();
}
