// The local page where the person allows a browser extension to connect (one-click pairing).
// It shows each open request with its code; the person allows the one whose code the extension shows.
import { language } from "/i18n.js";

const pageKey = document.querySelector('meta[name="shield-page-key"]').content;
const TEXT = {
  en: {
    intro: "A browser extension asks to connect to Photo Shield on this computer. Allow it only if the code " +
      "below is the one your Photo Shield extension shows right now.",
    none: "No browser is asking to connect. Open the extension's welcome page and press Connect.",
    ask: "Code", allow: "Allow", refuse: "Refuse", allowed: "Connected. You can close this page.",
    refused: "Refused.", failed: "That did not work: ", from: "asked by",
  },
  fr: {
    intro: "Une extension de navigateur demande à se connecter à Photo Shield sur cet ordinateur. " +
      "N'acceptez que si le code ci-dessous est celui qu'affiche votre extension Photo Shield en ce moment.",
    none: "Aucun navigateur ne demande à se connecter. Ouvrez la page d'accueil de l'extension et cliquez sur Connecter.",
    ask: "Code", allow: "Autoriser", refuse: "Refuser", allowed: "Connecté. Vous pouvez fermer cette page.",
    refused: "Refusé.", failed: "Cela n'a pas fonctionné : ", from: "demandé par",
  },
};
// The language the main page chose (both pages speak English and French).
const text = TEXT[language];
document.documentElement.lang = language;
document.getElementById("intro").textContent = text.intro;
const status = document.getElementById("status");
const list = document.getElementById("requests");
let shown = "";

async function call(method, path) {
  const response = await fetch(path, { method, headers: { "X-Shield-Page-Key": pageKey }, cache: "no-store" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || String(response.status));
  return body;
}

async function decide(id, decision) {
  try {
    await call("POST", `/v1/pairing/${id}/${decision}`);
    status.textContent = decision === "allow" ? text.allowed : text.refused;
  } catch (error) {
    status.textContent = text.failed + error.message;
  }
  refresh();
}

function render(requests) {
  const signature = JSON.stringify(requests);
  if (signature === shown) return; // re-rendering would steal the focus from a button
  shown = signature;
  list.replaceChildren(...requests.map(({ id, code, origin }) => {
    const item = document.createElement("li");
    const label = document.createElement("strong");
    label.className = "pairing-code";
    label.textContent = `${text.ask} ${code}`;
    const from = document.createElement("span");
    from.textContent = ` (${text.from} ${origin}) `;
    const allow = document.createElement("button");
    allow.textContent = text.allow;
    allow.dataset.decision = "allow";
    allow.addEventListener("click", () => decide(id, "allow"));
    const refuse = document.createElement("button");
    refuse.textContent = text.refuse;
    refuse.addEventListener("click", () => decide(id, "refuse"));
    item.append(label, from, allow, " ", refuse);
    return item;
  }));
  if (!requests.length && !status.textContent) status.textContent = text.none;
  if (requests.length) status.textContent = "";
}

async function refresh() {
  try {
    render((await call("GET", "/v1/pairing")).requests);
  } catch (error) {
    status.textContent = text.failed + error.message;
  }
}

refresh();
setInterval(refresh, 1000);
