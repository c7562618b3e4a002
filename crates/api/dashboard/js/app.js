// The dashboard's shell: signs in, routes `#/…` addresses to views, and keeps the navigation
// and the running-actions badge current. Each view renders into a fresh element, so a view left
// behind (by navigating while it loads) writes only into a detached node and stops polling.

import { session } from "./api.js";
import { errorNotice, h, mount } from "./dom.js";
import { startRunningBadge } from "./live.js";
import * as actions from "./views/actions.js";
import * as droplet from "./views/droplet.js";
import * as enableBackups from "./views/enable_backups.js";
import * as regions from "./views/regions.js";
import * as register from "./views/register.js";
import * as resources from "./views/resources.js";
import * as signin from "./views/signin.js";
import * as tokens from "./views/tokens.js";
import * as usage from "./views/usage.js";
import * as volume from "./views/volume.js";

const ROUTES = [
  [/^\/(droplets|volumes)(?:\/(active|inactive))?$/, (root, m) => resources.render(root, m[1], m[2] || "active")],
  [/^\/(droplets|volumes)\/new$/, (root, m) => register.render(root, m[1])],
  [/^\/droplets\/(\d+)$/, (root, m) => droplet.render(root, m[1])],
  [/^\/volumes\/([\w-]+)$/, (root, m) => volume.render(root, m[1])],
  [/^\/(droplets|volumes)\/([\w-]+)\/backups$/, (root, m) => enableBackups.render(root, m[1], m[2])],
  [/^\/actions$/, (root) => actions.render(root)],
  [/^\/regions$/, (root) => regions.render(root)],
  [/^\/usage$/, (root) => usage.render(root)],
  [/^\/tokens$/, (root) => tokens.render(root)],
];

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
    signin.render(root, message, () => route());
    return;
  }
  showSignedIn(true);
  const current = path();
  markCurrent(current);
  const match = ROUTES.map(([pattern, render]) => [current.match(pattern), render]).find(([m]) => m);
  try {
    if (!match) {
      document.title = "Not found · drydock";
      mount(root, h("h1", null, "Not found"), h("p", null, "This page does not exist. ", h("a", { href: "#/droplets" }, "Go to Droplets.")));
    } else {
      await match[1](root, match[0]);
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
