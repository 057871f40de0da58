# Build: the release binary. Runtime: a small Debian with the binary and the forms.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sipas

FROM debian:bookworm-slim
RUN useradd --system --home /app sipas && mkdir -p /app/data && chown -R sipas /app
COPY --from=build /src/target/release/sipas /usr/local/bin/sipas
COPY survey-forms /app/survey-forms
WORKDIR /app
USER sipas
# Without a PostgreSQL URL the data is an SQLite file in a volume, kept across containers.
ENV SIPAS_HOST=0.0.0.0 SIPAS_PORT=8080 SIPAS_DATABASE_URL=sqlite:///app/data/sipas.db
VOLUME /app/data
EXPOSE 8080
# The image has no curl: the binary asks /readyz itself (exit 0 when ready).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["sipas", "healthcheck"]
# SIGTERM: finish in-flight requests, then exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sipas"]
CMD ["serve"]
