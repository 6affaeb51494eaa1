// The messages after a unary or server-streaming call's request: none.

export async function* noMessages<Req>(): AsyncGenerator<Req, void, undefined> {}
