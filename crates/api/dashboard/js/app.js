// The dashboard's shell: signs in, routes `#/…` addresses to views, and keeps the navigation
// and the running-actions badge current. Each view renders into a fresh element, so a view left
// behind (by navigating while it loads) writes only into a detached node and stops polling.

import { session } from "./api.js";
import { errorNotice, h, mount } from "./dom.js";
import { startRunningBadge } from "./live.js";

// Each view is loaded when first shown: the first screen needs only its own module.
const ROUTES = [
  [/^\/(droplets|volumes)(?:\/(active|inactive))?$/, "resources", (v, root, m) => v.render(root, m[1], m[2] || "active")],
  [/^\/(droplets|volumes)\/new$/, "register", (v, root, m) => v.render(root, m[1])],
  [/^\/droplets\/(\d+)$/, "droplet", (v, root, m) => v.render(root, m[1])],
  [/^\/volumes\/([\w-]+)$/, "volume", (v, root, m) => v.render(root, m[1])],
  [/^\/(droplets|volumes)\/([\w-]+)\/backups$/, "enable_backups", (v, root, m) => v.render(root, m[1], m[2])],
  [/^\/actions$/, "actions", (v, root) => v.render(root)],
  [/^\/regions$/, "regions", (v, root) => v.render(root)],
  [/^\/usage$/, "usage", (v, root) => v.render(root)],
  [/^\/tokens$/, "tokens", (v, root) => v.render(root)],
];

/** A view's module, fetched the first time it is shown. A failed fetch reads as a network error. */
async function loadView(name) {
  try {
    return await import(`./views/${name}.js`);
  } catch (error) {
    throw new Error(`The dashboard could not load its ${name} screen (${error.message}). Reload the page.`);
  }
}

performance.mark("drydock:app-started");
const view = document.getElementById("view");
const nav = document.getElementById("nav");
const menu = document.getElementById("menu");
let stopBadge = null;

function path() {
  const hash = location.hash.replace(/^#/, "");
  return hash.startsWith("/") ? hash : "/droplets";
}

function markCurrent(current) {
  for (const link of nav.querySelectorAll("a")) {
    const section = link.getAttribute("href").slice(1);
    if (current === section || current.startsWith(`${section}/`)) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function showSignedIn(signedIn) {
  nav.hidden = !signedIn;
  menu.hidden = !signedIn;
  if (signedIn && !stopBadge) stopBadge = startRunningBadge(document.getElementById("running"));
  if (!signedIn && stopBadge) {
    stopBadge();
    stopBadge = null;
  }
}

async function route(message) {
  const root = h("div");
  mount(view, root);
  nav.classList.remove("open");
  menu.setAttribute("aria-expanded", "false");
  if (!session.token()) {
    showSignedIn(false);
    try {
      (await loadView("signin")).render(root, message, () => route());
    } catch (error) {
      mount(root, errorNotice(error));
    }
    return;
  }
  showSignedIn(true);
  const current = path();
  markCurrent(current);
  const match = ROUTES.map(([pattern, module, render]) => [current.match(pattern), module, render]).find(([m]) => m);
  try {
    if (!match) {
      document.title = "Not found · drydock";
      mount(root, h("h1", null, "Not found"), h("p", null, "This page does not exist. ", h("a", { href: "#/droplets" }, "Go to Droplets.")));
    } else {
      const [found, module, render] = match;
      const loaded = await loadView(module);
      if (root.isConnected) await render(loaded, root, found);
    }
  } catch (error) {
    if (root.isConnected) mount(root, errorNotice(error));
  }
  if (root.isConnected && document.activeElement === document.body) view.focus({ preventScroll: true });
}

window.addEventListener("hashchange", () => route());
window.addEventListener("drydock:unauthorized", (event) => {
  session.signOut();
  route(`Signed out: ${event.detail}`);
});
document.getElementById("signout").addEventListener("click", () => {
  session.signOut();
  route("Signed out.");
});
menu.addEventListener("click", () => {
  const open = nav.classList.toggle("open");
  menu.setAttribute("aria-expanded", String(open));
});

route();
