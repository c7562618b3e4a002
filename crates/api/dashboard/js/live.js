// Live progress: actions are polled while they run, as any API client would.

import { api } from "./api.js";
import { h, mount, toast } from "./dom.js";
import { bytes, percent } from "./format.js";

const POLL_MS = 1000;
const REDRAW_WHILE_RUNNING_MS = 2000;
// The API allows 5,000 requests an hour per token by default: the badge takes at most 720 of
// them, and none while the tab is hidden.
const BADGE_POLL_MS = 5000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls an action until it ends, calling `onUpdate` with each state; resolves with the last. */
export async function watchAction(id, onUpdate, isCancelled = () => false) {
  for (;;) {
    const { action } = await api.get(`/v2/actions/${id}`);
    onUpdate(action);
    if (action.status !== "in-progress" || isCancelled()) return action;
    await sleep(POLL_MS);
  }
}

/** An action's state: a progress bar while it runs, its status and error once it ended. */
export function actionProgress(action) {
  if (action.status === "in-progress") {
    const p = action.drydock?.progress || { percent: 0 };
    const label = `${action.type} ${percent(p.percent)}`;
    return h(
      "span",
      { class: "progress" },
      h("progress", { max: 100, value: p.percent, "aria-label": label }),
      h("span", null, percent(p.percent)),
      p.bytes_total ? h("span", { class: "muted" }, `${bytes(p.bytes_done)} of ${bytes(p.bytes_total)}`) : null,
    );
  }
  return h(
    "span",
    null,
    h("span", { class: `status ${action.status}` }, action.status),
    action.drydock?.error ? h("span", { class: "sub error" }, action.drydock.error) : null,
  );
}

/**
 * A line that follows one action to its end: used right after a button started it. Resolves
 * with the finished action.
 */
export function followAction(container, action, what) {
  const line = h("div", { class: "notice", role: "status" });
  container.prepend(line);
  let done = false;
  const render = (a) => {
    line.replaceChildren(h("strong", null, `${what} (action ${a.id}): `), actionProgress(a));
    line.classList.toggle("bad", a.status === "errored");
  };
  render(action);
  return watchAction(action.id, render, () => done || !line.isConnected).finally(() => {
    done = true;
  });
}

/** Keeps the count of running actions in the navigation up to date. */
export function startRunningBadge(badge) {
  let timer = null;
  const tick = async () => {
    if (document.hidden) {
      timer = setTimeout(tick, BADGE_POLL_MS);
      return;
    }
    try {
      const { actions } = await api.get("/v2/actions", { per_page: 50 });
      const running = actions.filter((a) => a.status === "in-progress").length;
      badge.hidden = running === 0;
      badge.textContent = String(running);
      badge.setAttribute("aria-label", `${running} running`);
    } catch {
      // Signed out or unreachable: the view says so; the badge just stays as it was.
    }
    timer = setTimeout(tick, BADGE_POLL_MS);
  };
  tick();
  return () => clearTimeout(timer);
}

/**
 * A page that follows what runs on it: `draw(content, notices, refresh)` fills `content` and
 * says whether an action is running, and while one is the page is drawn again every 2 s.
 * `notices` (the progress lines of actions started here) are kept across redraws.
 */
export async function followedPage(root, draw) {
  const notices = h("div");
  const content = h("div");
  mount(root, notices, content);
  let timer = null;
  const redraw = async () => {
    clearTimeout(timer);
    if (!content.isConnected) return;
    const focused = content.contains(document.activeElement) ? document.activeElement : null;
    const running = await draw(content, notices, refresh);
    if (focused) refocus(content, focused);
    if (running) timer = setTimeout(refresh, REDRAW_WHILE_RUNNING_MS);
  };
  const refresh = () => redraw().catch((error) => toast(error.message, true));
  await redraw();
}

/** After a redraw, focus the new control that matches the one that had focus, if any. */
function refocus(container, old) {
  const name = (el) => el.getAttribute("aria-label") || el.textContent.trim();
  const same = [...container.querySelectorAll(old.tagName)].find((el) => name(el) === name(old));
  same?.focus();
}
