// Node's file-system errors in words: "ENOENT: no such file or directory, open 'x'"
// becomes "does not exist", for one error line that already names the file.

const REASONS: Record<string, string> = {
  ENOENT: "does not exist",
  EISDIR: "is a folder, expected a file",
  ENOTDIR: "a folder on its path is a file",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "the file system is read-only",
  ENOSPC: "no space left on the device",
  EDQUOT: "the disk quota is exhausted",
  EEXIST: "already exists",
  ENOTEMPTY: "is a folder that is not empty",
  EXDEV: "is on another file system",
  EMFILE: "too many open files",
  ELOOP: "a symbolic link on its path loops",
  ENAMETOOLONG: "the name is too long",
};

/** Why a file operation failed, in words (the errno's meaning; else the error's own message). */
export function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return (code && REASONS[code]) ?? (e as Error).message;
}
