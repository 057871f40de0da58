# Build: the release binary. Runtime: a small Debian with the binary and the forms.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin sipas

FROM debian:bookworm-slim
RUN useradd --system --home /app sipas && mkdir -p /app && chown sipas /app
COPY --from=build /src/target/release/sipas /usr/local/bin/sipas
COPY survey-forms /app/survey-forms
WORKDIR /app
USER sipas
ENV SIPAS_HOST=0.0.0.0 SIPAS_PORT=8080
EXPOSE 8080
# SIGTERM: finish in-flight requests, then exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sipas"]
CMD ["serve"]
