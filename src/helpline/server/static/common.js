// Small helpers both pages use: building elements, and reading what the API says.

/** A new `tag` element with an optional class and text (always textContent, never HTML). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Bidirectional controls (embeddings, overrides, isolates, marks) reorder the text after
// them: "invoice\u202Efdp.exe" would read "invoiceexe.pdf". Shown written out instead.
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

/** `text` with each bidirectional control character shown as its code, e.g. `[U+202E]`, so
 * what someone typed is displayed in the order it was written (it stays stored as written). */
export function showBidiControls(text) {
  return String(text ?? "").replace(
    BIDI_CONTROLS,
    (control) => `[U+${control.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}]`,
  );
}

/** What a failed response says went wrong (the API's `{"error": {"message"}}`), or its status. */
export async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error?.message || `The server answered ${response.status}.`;
  } catch {
    return `The server answered ${response.status}. Please try again in a moment.`;
  }
}

/** An object URL showing a conversation's stored `image://ID`, fetched with `bearer`; or null.
 * `base`: the Helpline server's address when the page is on another site (the widget). */
export async function fetchStoredImage(conversationId, reference, bearer, base = "") {
  const id = reference.slice("image://".length);
  const response = await fetch(
    `${base}/api/conversations/${conversationId}/images/${encodeURIComponent(id)}`,
    { headers: { Authorization: `Bearer ${bearer}` } },
  );
  return response.ok ? URL.createObjectURL(await response.blob()) : null;
}
