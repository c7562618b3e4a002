// Droplets and volumes, SnapShooter-style: an Active tab (backups on) and an Inactive tab, with
// each one's plan, last and next backup and stored size.

import { api } from "../api.js";
import { h, mount, statusBadge, table } from "../dom.js";
import { bytes, plan, relative, time } from "../format.js";

const KINDS = {
  droplets: {
    title: "Droplets",
    one: "droplet",
    usageType: "droplet",
    row: (d) => ({
      id: String(d.id),
      name: d.name,
      sizeBytes: d.drydock.disk.size_bytes,
      region: d.region.slug,
      enabled: d.features.includes("backups"),
      policy: d.drydock.backup_policy,
      backups: d.drydock.backups,
      status: d.status,
    }),
  },
  volumes: {
    title: "Volumes",
    one: "volume",
    usageType: "volume",
    row: (v) => ({
      id: v.id,
      name: v.name,
      sizeBytes: v.drydock.disk.size_bytes,
      region: v.region.slug,
      enabled: v.drydock.backups_enabled,
      policy: v.drydock.backup_policy,
      backups: v.drydock.backups,
      status: null,
    }),
  },
};

/** Stored bytes per resource from the usage report; empty if this token may not read it. */
async function storedSizes() {
  try {
    const { usage } = await api.get("/drydock/v1/usage");
    return new Map(usage.resources.map((r) => [`${r.resource_type}:${r.resource_id}`, r.stored_bytes]));
  } catch {
    return new Map();
  }
}

export async function render(root, kind, tab) {
  const spec = KINDS[kind];
  document.title = `${spec.title} · drydock`;
  const [items, stored] = await Promise.all([api.all(`/v2/${kind}`, kind), storedSizes()]);
  performance.mark(`drydock:${kind}-list-loaded`);
  const rows = items.map(spec.row);
  const active = rows.filter((r) => r.enabled);
  const inactive = rows.filter((r) => !r.enabled);
  const shown = tab === "active" ? active : inactive;

  const head = h(
    "div",
    { class: "head" },
    h("div", null, h("h1", null, spec.title), h("p", { class: "muted" }, `${rows.length} registered, ${active.length} with backups on`)),
    h("a", { class: "button", href: `#/${kind}/new` }, `Register a ${spec.one}`),
  );
  if (rows.length === 0) {
    mount(root, head, emptyState(kind, spec));
    return;
  }
  const tabs = h(
    "div",
    { class: "tabs", role: "tablist", "aria-label": `${spec.title} by backup state` },
    h("a", { role: "tab", href: `#/${kind}/active`, "aria-selected": String(tab === "active") }, `Active (${active.length})`),
    h("a", { role: "tab", href: `#/${kind}/inactive`, "aria-selected": String(tab === "inactive") }, `Inactive (${inactive.length})`),
  );
  const filter = h("input", { type: "search", placeholder: "Filter by name", "aria-label": `Filter ${kind} by name` });
  const body = h("div", { role: "tabpanel" });
  const draw = () => {
    const needle = filter.value.trim().toLowerCase();
    const visible = needle ? shown.filter((r) => r.name.toLowerCase().includes(needle)) : shown;
    mount(body, visible.length ? listTable(kind, spec, visible, stored, tab) : emptyTab(kind, tab));
  };
  filter.addEventListener("input", draw);
  draw();
  mount(root, head, tabs, h("p", null, filter), body);
  performance.mark(`drydock:${kind}-list-rendered`);
}

function listTable(kind, spec, rows, stored, tab) {
  const now = Date.now();
  const headers = ["Name", h("th", { class: "num", scope: "col" }, "Disk"), "Region", "Backup plan", "Last backup", "Next backup", h("th", { class: "num", scope: "col" }, "Stored")];
  const body = rows.map((r) => {
    const b = r.backups;
    const last = b.last_success_at
      ? [time(b.last_success_at), h("span", { class: "sub" }, relative(b.last_success_at, now), " ", statusBadge(b.status))]
      : b.status === "disabled"
        ? "—"
        : statusBadge(b.status, b.status === "pending" ? "none yet" : b.status);
    return h(
      "tr",
      null,
      h("td", null, h("a", { href: `#/${kind}/${r.id}` }, r.name), r.status ? h("span", { class: "sub" }, r.status) : null),
      h("td", { class: "num" }, bytes(r.sizeBytes)),
      h("td", null, r.region),
      h("td", null, tab === "active" ? plan(r.policy) : h("a", { href: `#/${kind}/${r.id}/backups` }, "Enable backups")),
      h("td", null, last, b.last_error && b.status !== "ok" ? h("span", { class: "sub error" }, b.last_error) : null),
      h("td", null, b.next_window ? [time(b.next_window.start), h("span", { class: "sub" }, relative(b.next_window.start, now))] : "—"),
      h("td", { class: "num" }, bytes(stored.get(`${spec.usageType}:${r.id}`) ?? 0)),
    );
  });
  return table(headers, body, `${spec.title} with backups ${tab === "active" ? "on" : "off"}`);
}

function emptyTab(kind, tab) {
  return h(
    "div",
    { class: "empty" },
    tab === "active"
      ? h("p", null, `No ${kind} have backups on. Open one from the Inactive tab and choose Enable backups.`)
      : h("p", null, `Every ${kind.slice(0, -1)} has backups on.`),
  );
}

function emptyState(kind, spec) {
  const example =
    kind === "droplets"
      ? "drydock droplet register web-1 --disk /srv/disks/web-1.img"
      : "drydock volume register data-1 --disk /dev/vg0/data-1";
  return h(
    "div",
    { class: "empty" },
    h("h2", null, `No ${kind} yet`),
    h("p", null, `A ${spec.one} is a disk on a machine this server can read: an image file or a block device. Register one here, or from a shell:`),
    h("pre", null, h("code", null, example)),
    h("a", { class: "button", href: `#/${kind}/new` }, `Register a ${spec.one}`),
  );
}
