// Sign in with a user name and password (POST /login) or with an API token (checked with /me).

import { identify, isMissingRoute, login, session } from "../api.js";
import { h } from "../dom.js";

export function page() {
  const self = { title: "Sign in" };
  const message = h("div", { class: "alert", role: "alert", hidden: true });
  const show = (err) => {
    message.textContent = err && err.message ? err.message : String(err);
    message.hidden = false;
  };
  const busy = (form, on) => form.querySelectorAll("button, input").forEach((el) => (el.disabled = on));

  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const passwordForm = h(
    "form",
    {
      class: "form",
      "data-testid": "password-form",
      onsubmit: async (e) => {
        e.preventDefault();
        message.hidden = true;
        busy(passwordForm, true);
        try {
          const { token, user } = await login(username.value.trim(), password.value);
          session.save(token, user);
          self.onSignedIn();
        } catch (err) {
          show(isMissingRoute(err) ? new Error("This server has no password sign-in; sign in with an API token.") : err);
        } finally {
          busy(passwordForm, false);
        }
      },
    },
    h("label", { for: "username" }, "User name"),
    username,
    h("label", { for: "password" }, "Password"),
    password,
    h("button", { class: "btn btn-primary", type: "submit" }, "Sign in"),
  );

  const token = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true });
  const tokenForm = h(
    "form",
    {
      class: "form",
      "data-testid": "token-form",
      onsubmit: async (e) => {
        e.preventDefault();
        message.hidden = true;
        busy(tokenForm, true);
        const secret = token.value.trim();
        try {
          const user = await identify(secret);
          session.save(secret, user);
          self.onSignedIn();
        } catch (err) {
          show(err.status === 401 ? new Error("This token is not valid: it may be mistyped, expired or revoked.") : err);
        } finally {
          busy(tokenForm, false);
        }
      },
    },
    h("label", { for: "token" }, "API token"),
    token,
    h("p", { class: "hint" }, "A new installation's admin token is in $RUNBATCH_HOME/token."),
    h("button", { class: "btn", type: "submit" }, "Sign in with token"),
  );

  self.element = h(
    "div",
    { class: "signin" },
    h(
      "div",
      { class: "signin-card" },
      h("div", { class: "signin-brand" }, h("img", { src: "/dashboard/favicon.svg", alt: "" }), h("span", null, "runbatch")),
      h("h1", null, "Sign in"),
      message,
      passwordForm,
      h("div", { class: "divider" }, h("span", null, "or")),
      tokenForm,
    ),
  );
  return self;
}
