// The page's frame, shared by every mode: navigation between views, the signed-in/out switch, the
// view named in the URL rendered into #view. A mode says which views exist and how sessions work.
import { ApiError } from "./api.js";
import { closeDialog, h } from "./dom.js";
import { current, go, href, onChange } from "./router.js";

const $ = (id) => document.getElementById(id);

// views: [{ name, label, render(root, ctx) }], the first is the default.
// session: { isSignedIn(), signOut(), prompt(message) } - prompt shows the mode's sign-in form.
// ctx: what views share (client, caps, data sources); each render gets it with `params`,
// `navigate(params, {replace})` and `refresh()` added.
export function mountShell({ title, views, session, ctx }) {
  const nav = $("nav");
  const view = $("view");
  const signInView = $("sign-in-view");
  const signOutButton = $("sign-out");
  nav.replaceChildren(h("ul", {}, views.map((v) => h("li", {}, h("a", { href: href(v.name), "data-view": v.name }, v.label)))));
  let seq = 0;
  let shown = null;

  function show(signedIn) {
    signInView.hidden = signedIn;
    nav.hidden = !signedIn;
    signOutButton.hidden = !signedIn;
    view.hidden = !signedIn;
    if (!signedIn) { view.replaceChildren(); shown = null; }
  }

  function signOut(message = "") {
    seq += 1; // a render still in flight must not appear after signing out
    session.signOut();
    closeDialog();
    show(false);
    session.prompt(message);
  }

  async function render() {
    if (!session.isSignedIn()) { show(false); session.prompt(""); return; }
    show(true);
    const route = current();
    const spec = views.find((v) => v.name === route.view) || views[0];
    if (spec.name !== route.view) go(spec.name, {}, { replace: true });
    for (const a of nav.querySelectorAll("a")) {
      if (a.dataset.view === spec.name) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    const mine = ++seq;
    const focused = document.activeElement?.id;
    const fresh = h("div", { class: "view-body", "data-view": spec.name });
    try {
      await spec.render(fresh, {
        ...ctx, params: spec.name === route.view ? route.params : {},
        navigate: (params, options) => { if (!go(spec.name, params, options) || options?.replace) render(); },
        refresh: render,
      });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return; // the client's hook signed out
      fresh.replaceChildren(h("h2", { tabindex: -1 }, spec.label),
        h("p", { class: "error", role: "alert" }, String(err?.message || err)));
    }
    if (mine !== seq) return; // a later navigation won
    const sameView = shown === spec.name;
    view.replaceChildren(fresh);
    shown = spec.name;
    document.title = `${spec.label} · ${title}`;
    const again = focused && sameView ? document.getElementById(focused) : null;
    if (again) again.focus();
    else if (!sameView) fresh.querySelector("h2")?.focus({ preventScroll: true });
  }

  signOutButton.addEventListener("click", () => signOut());
  onChange(render);
  return {
    render,
    signedIn: render,
    expired: () => { if (session.isSignedIn()) signOut("Your session is no longer valid; sign in again."); },
    signOut,
  };
}
