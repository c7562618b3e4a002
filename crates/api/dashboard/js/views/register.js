// Registering a droplet or a volume: a name and a disk this server can read.

import { api } from "../api.js";
import { field, h, mount, select } from "../dom.js";

export async function render(root, kind) {
  const one = kind === "droplets" ? "droplet" : "volume";
  document.title = `Register a ${one} · drydock`;
  const { regions } = await api.get("/v2/regions", { per_page: 200 });
  const name = h("input", { type: "text", name: "name", required: true, autocomplete: "off" });
  const path = h("input", { type: "text", name: "disk", required: true, autocomplete: "off", spellcheck: false });
  const format = select("format", [["raw", "raw (image file or block device)"], ["qcow2", "qcow2"]], "raw");
  const region = select("region", regions.map((r) => [r.slug, `${r.name} (${r.slug})`]), regions[0]?.slug);
  const driver = select("power", [["none", "None: snapshots are taken live"], ["qemu", "QEMU over QMP"]], "none");
  const socket = h("input", { type: "text", name: "socket", autocomplete: "off", spellcheck: false });
  const socketField = field("QMP socket", socket, "The unix socket of the machine's QEMU monitor, e.g. /run/qemu/web-1.qmp");
  socketField.hidden = true;
  driver.addEventListener("change", () => {
    socketField.hidden = driver.value !== "qemu";
    socket.required = driver.value === "qemu";
  });
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit" }, `Register ${one}`);

  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        submit.disabled = true;
        error.textContent = "";
        const body = { name: name.value.trim(), region: region.value, disk: { path: path.value.trim(), format: format.value } };
        if (kind === "droplets" && driver.value === "qemu") body.power = { driver: "qemu", socket: socket.value.trim() };
        try {
          const created = await api.post(`/v2/${kind}`, body);
          location.hash = `#/${kind}/${created[one].id}`;
        } catch (e) {
          error.textContent = e.message;
          submit.disabled = false;
        }
      },
    },
    field("Name", name, one === "volume" ? "Lowercase letters, digits and '-', starting with a letter." : "Letters, digits, '.' and '-', starting and ending with a letter or digit."),
    field("Disk", path, "The path of an image file or a block device on this server, inside its disk roots."),
    field("Format", format),
    field("Region", region, "Where its snapshots and backups are stored."),
    kind === "droplets" ? field("Power driver", driver, "With a driver, a snapshot can power the machine off first, for a clean copy.") : null,
    kind === "droplets" ? socketField : null,
    error,
    h("div", { class: "buttons" }, submit, h("a", { class: "button secondary", href: `#/${kind}` }, "Cancel")),
  );
  mount(
    root,
    h("p", { class: "crumbs" }, h("a", { href: `#/${kind}` }, kind === "droplets" ? "Droplets" : "Volumes"), " / Register"),
    h("h1", null, `Register a ${one}`),
    form,
  );
  name.focus();
}
