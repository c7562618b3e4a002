// One volume: its disk, its backup plan and cost, its snapshots and backups, Snapshot Now.

import { api } from "../api.js";
import { busy, h, mount, toast } from "../dom.js";
import { followedPage } from "../live.js";
import { bytes, time } from "../format.js";
import { backupFacts, forgetButton } from "./droplet.js";
import { snapshotRows, snapshotsTable } from "./snapshots.js";

const SCHEDULED_TAGS = new Set(["hourly", "daily", "weekly", "monthly", "yearly"]);

export function render(root, id) {
  return followedPage(root, (content, notices, refresh) => draw(content, notices, id, refresh));
}

async function draw(content, notices, id, refresh) {
  const [{ volume }, snapshots, actions, regions, usage] = await Promise.all([
    api.get(`/v2/volumes/${id}`),
    api.all(`/v2/volumes/${id}/snapshots`, "snapshots"),
    api.get(`/v2/volumes/${id}/actions`, { per_page: 200 }).then((r) => r.actions),
    api.all("/v2/regions", "regions"),
    api.get("/drydock/v1/usage").then((r) => r.usage).catch(() => null),
  ]);
  document.title = `${volume.name} · Volumes · drydock`;
  const images = snapshots.map((s) => ({
    id: s.id,
    name: s.name,
    type: s.tags.some((t) => SCHEDULED_TAGS.has(t)) ? "backup" : "snapshot",
    created_at: s.created_at,
    regions: s.regions,
    tags: s.tags,
    storedBytes: Math.round(s.size_gigabytes * 2 ** 30),
  }));
  const rows = snapshotRows(images, actions, new Map());
  const owner = { kind: "volumes", id: volume.id, name: volume.name, region: volume.region.slug };
  const cost = usage?.resources.find((r) => r.resource_type === "volume" && r.resource_id === volume.id);
  const disk = volume.drydock.disk;
  const enabled = volume.drydock.backups_enabled;

  mount(
    content,
    h("p", { class: "crumbs" }, h("a", { href: "#/volumes" }, "Volumes"), ` / ${volume.name}`),
    h(
      "div",
      { class: "head" },
      h("div", null, h("h1", null, volume.name), volume.description ? h("p", { class: "muted" }, volume.description) : null),
      h(
        "div",
        { class: "buttons" },
        h("button", { type: "button", disabled: volume.drydock.locked, onclick: (e) => busy(e.currentTarget, () => snapshotNow(volume, refresh)) }, "Snapshot Now"),
        forgetButton("volumes", volume, "its snapshots stay"),
      ),
    ),
    h(
      "div",
      { class: "cards" },
      h(
        "section",
        { class: "card", "aria-labelledby": "disk-title" },
        h("h2", { id: "disk-title" }, "Disk"),
        h(
          "dl",
          { class: "facts" },
          h("dt", null, "Disk"),
          h("dd", null, h("span", { class: "mono" }, disk.path), ` (${disk.format}, ${bytes(disk.size_bytes)})`),
          h("dt", null, "Region"),
          h("dd", null, `${volume.region.name} (${volume.region.slug})`),
          h("dt", null, "Attached to"),
          h("dd", null, volume.droplet_ids.length ? volume.droplet_ids.map((d) => h("a", { href: `#/droplets/${d}` }, `droplet ${d}`)) : "nothing"),
          h("dt", null, "Registered"),
          h("dd", null, time(volume.created_at)),
        ),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "backups-title" },
        h("h2", { id: "backups-title" }, "Backups"),
        backupFacts(volume.drydock.backup_policy, volume.drydock.backups, enabled, cost, usage?.currency),
        h("div", { class: "buttons" }, h("a", { class: "button secondary", href: `#/volumes/${volume.id}/backups` }, enabled ? "Change backup plan" : "Enable backups")),
      ),
    ),
    h("h2", null, "Snapshots and backups"),
    snapshotsTable(owner, rows, regions, notices, refresh),
  );
  return actions.some((a) => a.status === "in-progress");
}

async function snapshotNow(volume, refresh) {
  const name = `${volume.name}-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-")}`;
  // The request answers when the snapshot is taken (or after a minute); the page follows the
  // action meanwhile.
  const taking = api.post(`/v2/volumes/${volume.id}/snapshots`, { name });
  setTimeout(refresh, 300);
  await taking;
  toast(`Snapshot ${name} taken.`);
  refresh();
}
