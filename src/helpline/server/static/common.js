// Small helpers both pages use: building elements, and reading what the API says.

/** A new `tag` element with an optional class and text (always textContent, never HTML). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
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

/** An object URL showing a conversation's stored `image://ID`, fetched with `bearer`; or null. */
export async function fetchStoredImage(conversationId, reference, bearer) {
  const id = reference.slice("image://".length);
  const response = await fetch(
    `/api/conversations/${conversationId}/images/${encodeURIComponent(id)}`,
    { headers: { Authorization: `Bearer ${bearer}` } },
  );
  return response.ok ? URL.createObjectURL(await response.blob()) : null;
}
