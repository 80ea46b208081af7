// What a secret's name may be (`{{ secrets.NAME }}`): shared by the spec's
// validation, the API's schemas and the CLI without loading either.
export const SECRET_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]*$/;
