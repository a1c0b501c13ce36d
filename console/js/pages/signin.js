import { signIn, takeSessionNotice } from "../api.js";
import { alertBox, errorText, field, h } from "../ui.js";

export function signInPage(onSignedIn) {
  const email = field("Email", h("input", { type: "email", name: "email", autocomplete: "username" }), { required: true });
  const password = field(
    "Password",
    h("input", { type: "password", name: "password", autocomplete: "current-password" }),
    { required: true },
  );
  const alert = alertBox();
  alert.show(takeSessionNotice());
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    {
      class: "card signin",
      "aria-labelledby": "signin-title",
      onsubmit: async (event) => {
        event.preventDefault();
        alert.show("");
        button.disabled = true;
        try {
          await signIn(email.control.value.trim(), password.control.value);
          onSignedIn();
        } catch (error) {
          alert.show(error.status === 401 ? "Email or password is wrong." : errorText(error));
          password.control.value = "";
          password.control.focus();
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h1", { id: "signin-title" }, "Sign in to Taskmill"),
    alert,
    email,
    password,
    button,
  );
  return h("section", { class: "signin-page" }, form);
}
