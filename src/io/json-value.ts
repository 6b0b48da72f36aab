// Checking JSON values read from files (configs, job payloads, data rows) before using their fields.

/** A JSON object (not null, not an array). */
export const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
