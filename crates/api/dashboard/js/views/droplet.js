// One droplet: its server, its backup plan and what it costs, its snapshots and backups, and
// the actions that matter (Snapshot Now, power off and snapshot, restore).

import { api } from "../api.js";
import { busy, confirmedButton, h, mount, statusBadge, toast } from "../dom.js";
import { bytes, money, plan, plural, relative, retention, time } from "../format.js";
import { followAction, followedPage } from "../live.js";
import { snapshotRows, snapshotsTable } from "./snapshots.js";

export function render(root, id) {
  return followedPage(root, (content, notices, refresh) => draw(content, notices, id, refresh));
}

async function load(id) {
  const [{ droplet }, snapshots, backups, actions, plan, regions, usage] = await Promise.all([
    api.get(`/v2/droplets/${id}`),
    api.all(`/v2/droplets/${id}/snapshots`, "snapshots"),
    api.all(`/v2/droplets/${id}/backups`, "backups"),
    api.get(`/v2/droplets/${id}/actions`, { per_page: 200 }).then((r) => r.actions),
    api.get(`/drydock/v1/droplets/${id}/retention`).catch(() => ({ backups: [] })),
    api.all("/v2/regions", "regions"),
    api.get("/drydock/v1/usage").then((r) => r.usage).catch(() => null),
  ]);
  return { droplet, snapshots, backups, actions, plan, regions, usage };
}

/** Draws the page; returns whether an action is running on the droplet. */
async function draw(content, notices, id, refresh) {
  const { droplet, snapshots, backups, actions, plan: retentionPlan, regions, usage } = await load(id);
  document.title = `${droplet.name} · Droplets · drydock`;
  const images = [...snapshots, ...backups].map((s) => ({
    id: String(s.id),
    intId: s.id,
    name: s.name,
    type: s.type,
    created_at: s.created_at,
    regions: s.regions,
    tags: s.drydock.tags,
    storedBytes: s.drydock.stored_bytes,
  }));
  const decisions = new Map(retentionPlan.backups.map((b) => [b.id, b]));
  const rows = snapshotRows(images, actions, decisions);
  const owner = { kind: "droplets", id: droplet.id, name: droplet.name, region: droplet.region.slug };
  const cost = usage?.resources.find((r) => r.resource_type === "droplet" && r.resource_id === String(droplet.id));
  const running = actions.some((a) => a.status === "in-progress");

  mount(
    content,
    h("p", { class: "crumbs" }, h("a", { href: "#/droplets" }, "Droplets"), ` / ${droplet.name}`),
    h(
      "div",
      { class: "head" },
      h("div", null, h("h1", null, droplet.name, " ", statusBadge(droplet.status)), droplet.locked ? h("p", { class: "muted" }, "An action is running on this droplet.") : null),
      h("div", { class: "buttons" }, snapshotButtons(droplet, notices, refresh), forgetButton("droplets", droplet, "its snapshots and backups stay (backups for 4 weeks)")),
    ),
    h(
      "div",
      { class: "cards" },
      serverCard(droplet),
      backupCard(droplet, cost, usage?.currency, notices, refresh),
    ),
    h("h2", null, "Snapshots and backups"),
    snapshotsTable(owner, rows, regions, notices, refresh),
  );
  return running;
}

function snapshotButtons(droplet, notices, refresh) {
  const hasPower = droplet.drydock.power?.driver && droplet.drydock.power.driver !== "none";
  const take = (powerOff) => (event) =>
    busy(event.currentTarget, async () => {
      const name = `${droplet.name}-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-")}`;
      const action = await api.action(`/v2/droplets/${droplet.id}/actions`, { type: "snapshot", name, power_off: powerOff });
      refresh();
      const done = await followAction(notices, action, powerOff ? "Power off and snapshot" : "Snapshot");
      toast(`Snapshot ${name}: ${done.status}${done.drydock?.error ? ` (${done.drydock.error})` : ""}`, done.status === "errored");
      refresh();
    });
  return [
    h("button", { type: "button", onclick: take(false), disabled: droplet.locked }, "Snapshot Now"),
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: take(true),
        disabled: droplet.locked || !hasPower,
        title: hasPower ? "Shuts the machine down, snapshots it, and powers it on again" : "Needs a power driver",
      },
      "Power off and snapshot",
    ),
  ];
}

/** Deleting a droplet or volume from drydock: its disk and images stay. */
export function forgetButton(kind, resource, kept) {
  const one = kind === "droplets" ? "droplet" : "volume";
  const question = {
    title: `Delete ${one} ${resource.name}?`,
    body: `drydock forgets this ${one} and stops its backups. Its disk is not touched, and ${kept}.`,
    action: `Delete ${one}`,
  };
  return confirmedButton(`Delete ${one}`, question, async () => {
    await api.delete(`/v2/${kind}/${resource.id}`);
    toast(`${one === "droplet" ? "Droplet" : "Volume"} ${resource.name} deleted.`);
    location.hash = `#/${kind}`;
  });
}

function serverCard(droplet) {
  const disk = droplet.drydock.disk;
  const power = droplet.drydock.power || { driver: "none" };
  return h(
    "section",
    { class: "card", "aria-labelledby": "server-title" },
    h("h2", { id: "server-title" }, "Server"),
    h(
      "dl",
      { class: "facts" },
      h("dt", null, "Disk"),
      h("dd", null, h("span", { class: "mono" }, disk.path), ` (${disk.format}, ${bytes(disk.size_bytes)})`),
      h("dt", null, "Status"),
      h("dd", null, droplet.status),
      h("dt", null, "Power driver"),
      h("dd", null, power.driver, power.socket ? h("span", { class: "sub mono" }, power.socket) : null),
      h("dt", null, "Region"),
      h("dd", null, `${droplet.region.name} (${droplet.region.slug})`),
      h("dt", null, "Registered"),
      h("dd", null, time(droplet.created_at)),
    ),
  );
}

export function backupFacts(policy, state, enabled, cost, currency) {
  if (!policy) return h("p", null, "Backups have never been set up.");
  const window = state.next_window;
  return h(
    "dl",
    { class: "facts" },
    h("dt", null, "State"),
    h("dd", null, enabled ? statusBadge(state.status) : statusBadge("disabled", "off")),
    h("dt", null, "Frequency"),
    h("dd", null, plan(policy)),
    h("dt", null, "Window"),
    h("dd", null, plural(policy.window_length_hours, "hour"), window ? h("span", { class: "sub" }, `next: ${time(window.start)} (${relative(window.start)})`) : null),
    h("dt", null, "Time zone"),
    h("dd", null, policy.time_zone || "UTC"),
    h("dt", null, "Retention"),
    h("dd", null, retention(policy)),
    h("dt", null, "Replication"),
    h("dd", null, policy.replication_regions?.length ? policy.replication_regions.join(", ") : "none"),
    h("dt", null, "Last backup"),
    h("dd", null, state.last_success_at ? `${time(state.last_success_at)} (${relative(state.last_success_at)})` : "none yet", state.last_error ? h("span", { class: "sub error" }, state.last_error) : null),
    h("dt", null, "Stored"),
    h("dd", null, cost ? `${bytes(cost.stored_bytes)} (${plural(cost.backups, "backup")}, ${plural(cost.snapshots, "snapshot")})` : "—"),
    h("dt", null, "Monthly cost"),
    h("dd", null, cost ? money(cost.monthly_cost, currency) : "—"),
  );
}

function backupCard(droplet, cost, currency, notices, refresh) {
  const enabled = droplet.features.includes("backups");
  const policy = droplet.drydock.backup_policy;
  const buttons = [h("a", { class: "button secondary", href: `#/droplets/${droplet.id}/backups` }, enabled ? "Change backup plan" : "Enable backups")];
  if (enabled) {
    const question = {
      title: `Turn off backups of ${droplet.name}?`,
      body: "No new backups are taken. Existing backups stay until the retention rule expires them; the plan is kept for when you turn backups on again.",
      action: "Turn off backups",
    };
    buttons.push(
      confirmedButton("Turn off backups", question, async () => {
        const action = await api.action(`/v2/droplets/${droplet.id}/actions`, { type: "disable_backups" });
        await followAction(notices, action, "Turning off backups");
        refresh();
      }),
    );
  }
  return h(
    "section",
    { class: "card", "aria-labelledby": "backups-title" },
    h("h2", { id: "backups-title" }, "Backups"),
    backupFacts(policy, droplet.drydock.backups, enabled, cost, currency),
    h("div", { class: "buttons" }, buttons),
  );
}
