// Base64 for binary payloads inside JSON frames: camera/screen JPEGs out, and model audio in when it arrives
// the seed's way (inlineData in session_message) rather than as a binary frame.

/** Encode in 32 KiB slices: spreading a whole frame into String.fromCharCode would overflow the call stack. */
export function arrayBufferToBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function base64ToArrayBuffer(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).buffer;
}
