// The snapshots table of a droplet or volume: every backup and snapshot with its status (running,
// completed, expired: pruned at the next pass, errored), start, duration, tags, regions and size,
// and what can be done with each.

import { api } from "../api.js";
import { ask, busy, confirmedButton, h, select, table, toast } from "../dom.js";
import { bytes, duration, time } from "../format.js";
import { actionProgress, followAction } from "../live.js";

const IMAGE_ACTIONS = new Set(["snapshot", "backup"]);

/**
 * Rows from the images, the retention plan (which backups expire) and the actions that made
 * them (durations; running and errored attempts, which have no image).
 */
export function snapshotRows(images, actions, retention) {
  const madeBy = new Map();
  for (const a of actions) if (a.drydock?.image_id) madeBy.set(Number(a.drydock.image_id), a);
  const rows = images.map((image) => {
    const action = madeBy.get(Number(image.intId));
    const plan = retention.get(Number(image.intId));
    const expiring = plan && !plan.keep;
    return {
      key: `image-${image.id}`,
      image,
      name: image.name,
      status: expiring ? "expired" : "completed",
      statusNote: expiring ? "pruned at the next pass" : plan?.reasons?.join("; "),
      startedAt: action?.started_at || image.created_at,
      duration: action ? duration(action.started_at, action.completed_at) : "—",
      tags: image.tags,
      regions: image.regions,
      size: image.storedBytes,
    };
  });
  for (const a of actions) {
    const running = a.status === "in-progress";
    if (!IMAGE_ACTIONS.has(a.type) || !(running || a.status === "errored")) continue;
    rows.push({
      key: `action-${a.id}`,
      action: a,
      name: `${a.type} (action ${a.id})`,
      status: a.status,
      startedAt: a.started_at,
      duration: running ? "running" : duration(a.started_at, a.completed_at),
      tags: [a.type === "snapshot" ? "manual" : "scheduled"],
      regions: [a.region_slug],
      size: null,
    });
  }
  rows.sort((a, b) => String(b.startedAt).localeCompare(String(a.startedAt)));
  return rows;
}

/**
 * The table. `owner` is {kind: "droplets"|"volumes", id, name, region}; `regions` every
 * configured region; `refresh` re-renders the page after a change.
 */
export function snapshotsTable(owner, rows, regions, container, refresh) {
  if (rows.length === 0) {
    return h("div", { class: "empty" }, h("p", null, "No snapshots or backups yet. Take one with Snapshot Now, or enable backups."));
  }
  const headers = ["Name", "Status", "Started", "Duration", "Tags", "Regions", h("th", { class: "num", scope: "col" }, "Size"), "Actions"];
  const body = rows.map((row) =>
    h(
      "tr",
      { "data-key": row.key },
      h("td", null, row.name),
      h("td", null, row.action ? actionProgress(row.action) : [h("span", { class: `status ${row.status}` }, row.status), row.statusNote ? h("span", { class: "sub" }, row.statusNote) : null]),
      h("td", null, time(row.startedAt)),
      h("td", null, row.duration),
      h("td", null, row.tags.map((t) => h("span", { class: "tag" }, t))),
      h("td", null, row.regions.join(", ")),
      h("td", { class: "num" }, row.size === null ? "—" : bytes(row.size)),
      h("td", null, row.image ? imageButtons(owner, row.image, regions, container, refresh) : null),
    ),
  );
  return table(headers, body, `Snapshots and backups of ${owner.name}`);
}

function imageButtons(owner, image, regions, container, refresh) {
  // Each name starts with the visible text, so speech and sight agree.
  const label = (text) => ({ "aria-label": `${text}: ${image.name}`, type: "button", class: "secondary" });
  const follow = async (action, what) => {
    refresh();
    const done = await followAction(container, action, what);
    toast(`${what}: ${done.status}${done.drydock?.error ? ` (${done.drydock.error})` : ""}`, done.status === "errored");
    refresh();
  };
  const buttons = [];
  if (owner.kind === "droplets") {
    buttons.push(
      confirmedButton(
        "Restore",
        {
          title: `Restore ${owner.name}?`,
          body: `Its disk is replaced by "${image.name}" from ${time(image.created_at)}. Everything written since is lost. The machine is powered off during the restore if its power driver can.`,
          action: "Restore",
        },
        async () => {
          const action = await api.action(`/v2/droplets/${owner.id}/actions`, { type: "restore", image: image.intId });
          await follow(action, `Restoring ${owner.name}`);
        },
        label("Restore"),
      ),
      h("button", {
        ...label("New droplet"),
        onclick: (e) =>
          busy(e.currentTarget, async () => {
            const values = await ask({
              title: `New droplet from "${image.name}"`,
              action: "Create droplet",
              fields: [
                ["name", "Name", h("input", { type: "text", required: true, value: `${owner.name}-restored` })],
                ["disk", "Disk path", h("input", { type: "text", required: true, spellcheck: false }), "A new file on this server, inside its disk roots: the image is restored into it."],
                ["region", "Region", select("region", image.regions.map((r) => [r, r]), owner.region)],
              ],
            });
            if (!values) return;
            const created = await api.post("/v2/droplets", { name: values.name, region: values.region, image: image.intId, disk: { path: values.disk } });
            const create = created.links?.actions?.[0];
            const { action } = await api.get(`/v2/actions/${create.id}`);
            const done = await followAction(container, action, `Creating droplet ${values.name}`);
            if (done.status === "completed") location.hash = `#/droplets/${created.droplet.id}`;
            else toast(`Creating ${values.name} failed: ${done.drydock?.error || done.status}`, true);
          }),
      }, "New droplet"),
    );
  } else {
    buttons.push(
      h("button", {
        ...label("New volume"),
        onclick: (e) =>
          busy(e.currentTarget, async () => {
            const values = await ask({
              title: `New volume from "${image.name}"`,
              action: "Create volume",
              fields: [
                ["name", "Name", h("input", { type: "text", required: true, value: `${owner.name}-restored` }), "Lowercase letters, digits and '-'."],
                ["disk", "Disk path", h("input", { type: "text", required: true, spellcheck: false }), "A new file on this server, inside its disk roots."],
              ],
            });
            if (!values) return;
            const created = await api.post("/v2/volumes", { name: values.name, region: owner.region, snapshot_id: image.id, disk: { path: values.disk } });
            toast(`Volume ${values.name} is being created from "${image.name}".`);
            location.hash = `#/volumes/${created.volume.id}`;
          }),
      }, "New volume"),
    );
  }
  if (image.intId !== undefined) {
    const elsewhere = regions.filter((r) => !image.regions.includes(r.slug) && r.available);
    if (elsewhere.length) {
      buttons.push(
        h("button", {
          ...label("Copy to region"),
          onclick: (e) =>
            busy(e.currentTarget, async () => {
              const values = await ask({
                title: `Copy "${image.name}" to another region`,
                action: "Copy",
                fields: [["region", "Region", select("region", elsewhere.map((r) => [r.slug, `${r.name} (${r.slug})`]))]],
              });
              if (!values) return;
              const action = await api.action(`/v2/images/${image.intId}/actions`, { type: "transfer", region: values.region });
              await follow(action, `Copying "${image.name}" to ${values.region}`);
            }),
        }, "Copy to region"),
      );
    }
    if (image.type === "backup") {
      buttons.push(
        h("button", {
          ...label("Convert to snapshot"),
          onclick: (e) =>
            busy(e.currentTarget, async () => {
              const action = await api.action(`/v2/images/${image.intId}/actions`, { type: "convert" });
              await follow(action, `Converting "${image.name}" to a snapshot`);
            }),
        }, "Convert to snapshot"),
      );
    }
  }
  const question = {
    title: `Delete "${image.name}"?`,
    body: `This ${image.type} of ${owner.name} is deleted in every region (${image.regions.join(", ")}). It cannot be restored afterwards.`,
    action: `Delete ${image.type}`,
  };
  buttons.push(
    confirmedButton(
      "Delete",
      question,
      async () => {
        await api.delete(image.intId !== undefined ? `/v2/images/${image.intId}` : `/v2/snapshots/${image.id}`);
        toast(`Deleted "${image.name}".`);
        refresh();
      },
      { ...label("Delete"), class: "danger secondary" },
    ),
  );
  return h("div", { class: "row-buttons" }, buttons);
}
